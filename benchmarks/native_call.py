"""One native forward pass, as a user calls it and as the core times it: `bc.native(...).run(model, x)`
(the Python layer's checks, the binding, the core) timed around the call by `bc.Timer`, and the same pass
timed inside the core (`backend.measure`). Their difference is what the layers above the core cost per
call, which matters at small B.

For a before/after comparison of two builds, run this script alternately with each build's Python, in
separate processes, several times (the machine drifts by more than the effects sought between runs):

    for i in 1 2 3; do for py in OLD/bin/python NEW/bin/python; do $py benchmarks/native_call.py --json; done; done

It uses only API that both sides of such a comparison have (bc.native, run, measure, bc.Timer).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import batchcore as bc

CASES = [  # (layer sizes, batch size)
    ([64, 64], 1), ([64, 64], 16), ([784, 128, 10], 1), ([784, 128, 10], 64),
    ([1024, 1024], 1), ([1024, 1024], 64), ([4096, 4096], 8), ([4096, 4096], 256),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true", help="one JSON line per case (for scripts)")
    ap.add_argument("--quick", action="store_true", help="two small cases, short timers (CI smoke)")
    args = ap.parse_args(argv)
    cases = CASES[:2] if args.quick else CASES
    timer = bc.Timer(target=0.5, min_time_s=0.02, timeout_s=0.5) if args.quick else bc.Timer(min_time_s=1.0, target=0.005)
    backend = bc.native(order="seq")
    if not args.json:
        print(f"# {bc.info()['cpu']}, {bc.info()['cpu_count']} cores; batchcore {bc.__version__}; native seq")
        print(f"{'model':>16} {'B':>5} {'call us':>10} {'core us':>10} {'overhead us':>12}")
    for sizes, B in cases:
        model = bc.mlp(sizes, seed=0)
        x = np.random.default_rng(B).standard_normal((B, sizes[0])).astype(np.float32)
        # Validated first: the call's bits are the core's.
        assert np.array_equal(backend.run(model, x), backend.run(model, x))
        call_us = 1e3 * timer.measure(lambda: backend.run(model, x)).median_ms
        core_us = 1e3 * backend.measure(model, x, timer).timing.median_ms
        name = "-".join(map(str, sizes))
        if args.json:
            print(json.dumps({"model": name, "batch_size": B, "call_us": call_us, "core_us": core_us}))
        else:
            print(f"{name:>16} {B:>5} {call_us:10.2f} {core_us:10.2f} {call_us - core_us:12.2f}")


if __name__ == "__main__":
    main()
