"""Study 2: evaluating with another batch size than training used (model.evaluate(x, y, batch_size=B)).

The digits CNN, trained in batches of 64, is evaluated on 450 held-out digits in batches of B by PyTorch and
by batchcore's native core: per B the loss an evaluation loop reports, whether its bits equal B=1's, and
why not (the logits, or the loss's reduction), next to the same per-row losses summed exactly.

    python examples/02_evaluation.py                        # about 10 s on 2 cores
    python examples/02_evaluation.py --quick --out e.json   # CI smoke; then: batchcore report e.json -o e.html
"""

from digits_common import show, study_args

import batchcore as bc
from batchcore.studies import digits

args = study_args(__doc__)

x_train, y_train, x_test, y_test = digits.load()
net = digits.cnn(seed=0)
digits.train(net, x_train, y_train, epochs=2 if args.quick else 15, batch_size=64)

sizes = [1, 8, 64] if args.quick else [1, 8, 32, 128, len(x_test)]
study = bc.studies.evaluation(net, x_test, y_test, batch_sizes=sizes, backends=[bc.torch(), bc.native(order="seq")])
show(study, args.out)
