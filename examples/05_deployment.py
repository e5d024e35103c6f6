"""Study 5: which dynamic-batching setting should a server use?

A wide MLP trained on the digits behind a dynamic batcher (max batch size, max queue delay, as Triton's and TorchServe's):
its service time per batch size measured once, the batcher simulated at a Poisson arrival rate for every
setting (p50, p99 with intervals, throughput), the best setting scored as MLPerf's Server scenario scores
one (the highest rate within a p99 budget), and the simulation checked against the same queue run for real:
its forecast (service times measured beforehand) and its queue model alone (replayed with the times the
real passes took).

    python examples/05_deployment.py                        # about half a minute on 2 cores
    python examples/05_deployment.py --quick --out d.json   # CI smoke; then: batchcore report d.json -o d.html
"""

from digits_common import show, study_args

import batchcore as bc
from batchcore.studies import digits

args = study_args(__doc__)

x_train, y_train, x_test, y_test = digits.load()
net = digits.wide_mlp(seed=0)  # passes of tenths of a ms: the CNN's tens of us are less than a queue's hand-offs
digits.train(net, x_train, y_train, epochs=2 if args.quick else 15)

study = bc.studies.deployment(net, x_test, max_batch_sizes=(1, 4, 16) if args.quick else (1, 2, 4, 8, 16, 32),
                              max_delays_ms=(0.0, 1.0) if args.quick else (0.0, 0.5, 2.0),
                              requests=600 if args.quick else 4000, service_samples=10 if args.quick else 60,
                              backend=bc.native(threads=1))  # one core computes, the other carries the load
show(study, args.out)
