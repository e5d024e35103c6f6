"""This machine's ceilings, and where a model's forward passes stand against them, hot and cold.

1. The probes (bc.probe) on 1 thread and on all cores: fma peak, effective clock, flop per cycle, memory
   and last-level-cache bandwidth (triad), ridge intensity.
2. One MLP per backend and batch size: GFLOP/s, % of the fma peak, % of the roofline, and the native
   core's cold-to-hot median ratio (cold: each pass reads the next of input copies holding 2x the
   last-level cache), hot and cold measured one after the other at each B.

    python benchmarks/roofline.py            # about two minutes
    python benchmarks/roofline.py --quick    # smoke test
"""

from __future__ import annotations

import argparse

import numpy as np

import batchcore as bc


def probe_table(thread_counts):
    print("Probes (bc.probe, measured now: refresh=True)")
    print(f"{'threads':>7} {'fma GFLOP/s':>11} {'GHz':>5} {'flop/cycle/thread':>17} {'memory GB/s':>11} "
          f"{'LLC GB/s':>8} {'ridge flop/B':>12}")
    for t in thread_counts:
        p = bc.probe(threads=t, refresh=True)
        # the clock (and so flop per cycle) is unknown where the probe could not measure it: "-", and why
        ghz = "-" if p.clock_ghz is None else f"{p.clock_ghz:.2f}"
        per_cycle = "-" if p.flops_per_cycle is None else f"{p.flops_per_cycle:.1f}"
        print(f"{t:>7} {p.peak_gflops:>11.1f} {ghz:>5} {per_cycle:>17} "
              f"{p.bandwidth_gbs:>11.1f} {p.cache_bandwidth_gbs or float('nan'):>8.1f} {p.ridge_intensity:>12.2f}"
              + (f"  (clock: {p.clock_note})" if p.clock_note else ""))
    print()


def roofline_table(sizes, batch_sizes, timer):
    model = bc.mlp(sizes, seed=0)
    backends = [bc.native()]
    for make in (lambda: bc.torch(measure_memory=False), bc.numpy):
        try:
            backends.append(make())
        except bc.MissingDependencyError:
            pass
    res = bc.sweep(model, batch_sizes, backends, rows=max(batch_sizes), timer=timer)
    cold = {}
    rng = np.random.default_rng(0)
    for B in batch_sizes:
        x = rng.standard_normal((B, model.input_width), dtype=np.float32)
        hot_ms = bc.native().measure(model, x, timer).timing.median_ms
        cold_ms = bc.native().measure(model, x, timer, cold=True).timing.median_ms
        cold[B] = cold_ms / hot_ms
    print(f"Roofline of {model.describe()} (% of the fma peak and of min(peak, bandwidth x intensity); "
          "cold/hot: native, this run)")
    print(f"{'backend':<12} {'B':>5} {'ms':>9} {'GFLOP/s':>8} {'flop/B':>7} {'%peak':>6} {'%roof':>6} {'cold/hot':>8}")
    for p in res.points:
        ratio = f"{cold[p['batch_size']]:.2f}" if p["backend"] == "native[seq]" else ""
        print(f"{p['backend']:<12} {p['batch_size']:>5} {p['time_ms']:>9.4f} {p['gflops']:>8.1f} {p['intensity']:>7.1f} "
              f"{100 * p['peak_frac']:>6.0f} {100 * p['roofline_frac']:>6.0f} {ratio:>8}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    threads = bc._core.default_threads()
    if args.quick:
        probe_table([threads])
        roofline_table([64, 64, 10], [1, 8], bc.Timer(min_samples=3, min_time_s=0, timeout_s=0.5, target=0.5))
        return
    probe_table(sorted({1, threads}))
    roofline_table([1024, 4096, 1024], [1, 8, 64, 256, 1024], bc.Timer())


if __name__ == "__main__":
    main()
