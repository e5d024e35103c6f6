"""Study 1: "larger batches may slightly reduce per-sample accuracy". Do they?

A small CNN trained on scikit-learn's digits (bundled, no download) is evaluated on 450 held-out digits in
batches of B, by PyTorch and by batchcore's native core. Per B: accuracy with its 95 % interval, every
prediction that differs from B=1's, its margin, and whether rounding alone explains it.

    python examples/01_accuracy.py                     # about 10 s on 2 cores
    python examples/01_accuracy.py --quick --out a.json  # CI smoke; then: batchcore report a.json -o a.html
"""

from digits_common import show, study_args

import batchcore as bc
from batchcore.studies import digits

args = study_args(__doc__)

x_train, y_train, x_test, y_test = digits.load()
net = digits.cnn(seed=0)
seconds = digits.train(net, x_train, y_train, epochs=2 if args.quick else 15)
print(f"trained in {seconds:.1f} s")

sizes = [1, 8, 64] if args.quick else [1, 2, 8, 64, 256, len(x_test)]
study = bc.studies.accuracy(net, x_test, y_test, batch_sizes=sizes, backends=[bc.torch(), bc.native(order="seq")])
show(study, args.out)
