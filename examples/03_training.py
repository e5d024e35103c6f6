"""Study 3: the training batch size, gradient accumulation and BatchNorm, in plain PyTorch.

The digits CNN trained at B = 32, 128 and 512 from several seeds (test accuracy per B with a 95 % interval
and Welch's test between the extremes, so that seed noise is not taken for a batch effect); one step of
128 rows against 4 accumulated steps of 32 (gradient bits, and both against float64); a CNN with
BatchNorm evaluated in batches of B in train and in eval mode.

    python examples/03_training.py                        # about a minute on 2 cores
    python examples/03_training.py --quick --out t.json   # CI smoke; then: batchcore report t.json -o t.html
"""

from digits_common import show, study_args

import batchcore as bc
from batchcore.studies import digits

args = study_args(__doc__)

x_train, y_train, x_test, y_test = digits.load()
study = bc.studies.training(digits.cnn, digits.cnn_bn, digits.train, x_train, y_train, x_test, y_test,
                            batch_sizes=(32, 128, 512), seeds=(0, 1) if args.quick else (0, 1, 2, 3, 4),
                            epochs=2 if args.quick else 15, accumulate=(4, 32), bn_sizes=(2, 8, 64, len(x_test)))
show(study, args.out)
