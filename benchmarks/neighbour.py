"""What a neighbour costs the native pool: a 1024 x 1024 linear layer (seq) timed single call by single call
right after something else ran in the same process, and timed by `bc.Timer` while another process keeps
one core busy.

A user who alternates torch and batchcore calls in one process sees batchcore's calls slow down. The
question this script answers is why: torch's OpenMP workers spinning after their call, or anything that
leaves the pool idle for a while (its workers block after 200 us without work; the VM's idle cores slow
down)? The rows 'sleep' and 'busy' have no torch in them; 'torch, then 20 ms sleep' outlasts any spin.

    python benchmarks/neighbour.py            # the tables (about a minute)
    python benchmarks/neighbour.py --quick    # smoke test for CI
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

import batchcore as bc


def busy(seconds):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass


def single_call_us(call, before, calls):
    """Median microseconds of `call` when each call comes right after `before()`."""
    samples = []
    for _ in range(calls):
        before()
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return 1e6 * float(np.median(samples))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--calls", type=int, default=80)
    args = ap.parse_args(argv)
    import torch

    threads = bc.info()["cpu_count"]
    torch.set_num_threads(threads)
    n = 64 if args.quick else 1024
    batch_sizes = [8] if args.quick else [8, 64, 256]
    calls = 5 if args.quick else args.calls
    model = bc.mlp([n, n], seed=0)
    module, core = bc.backends.module_on(model, "cpu"), bc.backends.cpu_model(model)
    native = bc.native(order="seq", threads=threads)
    env = bc.info()
    ident = env["cpu_identity"]
    print(f"# {env['cpu']} (family {ident['cpu family']}, model {ident['model']}), {env['cpu_count']} cores;"
          f" torch {env['torch']} ({threads} threads); "
          f"thread environment {env['thread_environment']}")
    print(f"# native seq {n}x{n}, microseconds per call (medians of {calls} single calls, then of bc.Timer)")
    for B in batch_sizes:
        x = np.random.default_rng(B).standard_normal((B, n)).astype(np.float32)
        xt = torch.from_numpy(x)
        assert np.allclose(module(xt).detach().numpy(), native.run(model, x), rtol=1e-4, atol=1e-4)
        befores = {
            "nothing (back to back)": lambda: None,
            "3 ms sleep": lambda: time.sleep(0.003),
            "3 ms busy loop (this thread)": lambda: busy(0.003),
            f"torch call ({threads} threads)": lambda: module(xt),
            "torch call, then 20 ms sleep": lambda: (module(xt), time.sleep(0.02)),
        }
        with torch.no_grad():
            for _ in range(20):
                core.run(x, native.options)
                module(xt)
            rows = {name: single_call_us(lambda: core.run(x, native.options), f, calls) for name, f in befores.items()}
        timer_alone = native.measure(model, x).timing.median_ms * 1e3
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)
            timer_busy = native.measure(model, x).timing.median_ms * 1e3
        finally:
            hog.kill()
            hog.wait()
        print(f"\nB={B}: bc.Timer alone {timer_alone:.1f} us; with another process busy on one core "
              f"{timer_busy:.1f} us ({timer_busy / timer_alone:.2f}x)")
        print(f"{'single call right after':>32} {'us':>9} {'/ back to back':>15}")
        base = rows["nothing (back to back)"]
        for name, us in rows.items():
            print(f"{name:>32} {us:9.1f} {us / base:15.2f}")


if __name__ == "__main__":
    main()
