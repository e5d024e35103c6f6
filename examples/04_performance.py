"""Study 4: latency and throughput per batch size, the knee, the roofline, and the largest batch that fits.

The digits CNN over all 1,797 digits in batches of 1 to 1,024, by PyTorch and batchcore's native core: each
point's median with its 95 % interval, GFLOP/s against the measured peak and the roofline, the knee of the
throughput curve, the best batch under a 1 ms p99 budget, and the largest batch within 16 MiB, found by
real forward passes whose out-of-memory errors are caught with everything freed.

    python examples/04_performance.py                        # about a minute on 2 cores
    python examples/04_performance.py --quick --out p.json   # CI smoke; then: batchcore report p.json -o p.html
"""

import torch
from digits_common import show, study_args

import batchcore as bc
from batchcore.studies import digits

args = study_args(__doc__)

x_train, y_train, x_test, y_test = digits.load()
net = digits.cnn(seed=0)
digits.train(net, x_train, y_train, epochs=2 if args.quick else 15)

every_digit = torch.cat([x_train, x_test])
sizes = [1, 8, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
timer = bc.Timer(min_time_s=0, timeout_s=0.2, target=0.2) if args.quick else bc.Timer(min_time_s=0.2, timeout_s=3, target=0.02)
backends = [bc.torch(measure_memory=not args.quick), bc.native(order="seq")]  # torch's CPU memory: ~1 s a point
study = bc.studies.performance(net, every_digit, batch_sizes=sizes, backends=backends,
                               budget_bytes=16 * 2**20, latency_ms=1.0, timer=timer, rounds=1 if args.quick else 3)
show(study, args.out)
