"""The timer's own cost and resolution, and how well its median repeats from sweep to sweep.

1. Overhead: the core's clock read (median of back-to-back reads), and what the policy measures for a
   call that does nothing (an empty Python callable; the native core on a 1 x 1 model, B = 1): the
   floor under every figure batchcore reports.
2. Run-to-run spread: the same sweep repeated (default 5 times) at the default target (1 %); per point the
   spread (max - min) / median of the repeated medians. The goal is <= 2 % on points over 1 ms.

    python benchmarks/timer_overhead.py            # a few minutes
    python benchmarks/timer_overhead.py --quick    # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import batchcore as bc


def overhead_table(timer):
    print("Timer overhead (the policy applied to calls that do nothing)")
    print(f"{'what':<36} {'median ns':>10} {'CI half %':>9} {'samples':>8} {'calls/sample':>12} {'clock read ns':>13}")
    tiny = bc.mlp([1, 1], seed=0)
    x = np.ones((1, 1), np.float32)
    rows = [("empty Python callable", timer.measure(lambda: None)),
            ("native 1x1 model, B=1 (in the core)", bc.native(threads=1).measure(tiny, x, timer).timing)]
    for name, m in rows:
        print(f"{name:<36} {m.median_ms * 1e6:>10.1f} {m.ci_rel_halfwidth * 100:>9.2f} {m.samples:>8} "
              f"{m.calls_per_sample:>12} {m.clock_overhead_ns:>13.1f}")
    print()


def spread_table(repeats, timer, sizes, batch_sizes):
    model = bc.mlp(sizes, seed=0)
    backends = [bc.native()]
    try:
        backends.append(bc.torch())
    except bc.MissingDependencyError:
        pass
    medians = {}
    for _ in range(repeats):
        res = bc.sweep(model, batch_sizes, backends, rows=max(batch_sizes), timer=timer)
        for p in res.points:
            medians.setdefault((p["backend"], p["batch_size"]), []).append(p)
    print(f"Run-to-run spread of the median over {repeats} sweeps of {model.describe()} (target {timer.target:.0%})")
    print(f"{'backend':<14} {'B':>5} {'median ms':>10} {'spread %':>9} {'CI half % (max)':>15} {'target met':>10} {'samples':>8}")
    worst = 0.0
    for (label, B), pts in medians.items():
        m = np.array([p["time_ms"] for p in pts])
        spread = (m.max() - m.min()) / np.median(m)
        if np.median(m) > 1.0:
            worst = max(worst, spread)
        ci = max(p["ci_rel_halfwidth"] or np.inf for p in pts)
        met = sum(p["target_met"] for p in pts)
        n = int(np.median([p["samples"] for p in pts]))
        print(f"{label:<14} {B:>5} {np.median(m):>10.4f} {spread * 100:>9.2f} {ci * 100:>15.2f} {met:>7}/{len(pts)} {n:>8}")
    print(f"\nlargest spread among points over 1 ms: {worst * 100:.2f} % (goal <= 2 %)")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    env = bc.info()
    print(f"{env['cpu']} ({env['cpu_count']} cores, {env['simd']}), batchcore {env['batchcore']}, torch {env['torch']}\n")
    if args.quick:
        timer = bc.Timer(min_time_s=0.02, timeout_s=0.5, target=0.2)
        overhead_table(timer)
        spread_table(2, timer, [64, 64], [1, 8])
    else:
        overhead_table(bc.Timer())
        spread_table(args.repeats, bc.Timer(), [1024, 1024, 1024], [8, 64, 256, 1024])
    return 0


if __name__ == "__main__":
    sys.exit(main())
