"""CPU linear-layer throughput: batchcore's native orders against torch (MKL) and NumPy (OpenBLAS).

Interleaved measurement (torch, numpy, each native order, torch, ... per repeat) so that machine noise
hits all contenders alike. One sample is a block: a 120 ms pause, untimed calls for >= 25 ms (they wake
the contender's threads, warm its caches and let the cores ramp up), then calls timed together until the
block lasts >= 20 ms, per-call time = block time / calls. Medians of the repeats; every result is validated
against the `exact` order (within a tolerance for the libraries, bit for bit across batch sizes for native)
before it is timed.

    python benchmarks/cpu_gemm.py            # the full table (a few minutes)
    python benchmarks/cpu_gemm.py --quick    # smoke test for CI (seconds; asserts nothing about speed)
    python benchmarks/cpu_gemm.py --no-layers --repeats 15   # the whole-MLP tables alone
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import batchcore as bc


def gflops(flops, seconds):
    return flops / seconds / 1e9


def blas_line():
    """Which kernel NumPy's BLAS runs (threadpoolctl), and the OpenBLAS variables that can force an older one:
    some machines set OPENBLAS_CORETYPE=Haswell (AVX2) for old OpenBLAS builds; a fair comparison unsets it
    in the benchmark's command alone: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ..."""
    import os

    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        kernels = "kernel unknown (pip install threadpoolctl to see it)"
    else:
        kernels = ", ".join(f"{p['internal_api']} {p['version']} kernel {p.get('architecture')} "
                            f"({p['num_threads']} threads)" for p in threadpool_info() if p["user_api"] == "blas")
    return f"# numpy's BLAS: {kernels}; environment: {forced or 'no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE'}"


def timed_block(fn, x, min_seconds=0.02, settle_seconds=0.12, warmup_seconds=0.025):
    """Seconds per call over a block of calls lasting at least min_seconds. Before it: a pause, so that
    the previous contender's worker threads stop spinning (OpenBLAS's busy-wait about 0.1 s after a
    call and would steal the cores of whoever comes next), then untimed calls for at least
    warmup_seconds: after an idle pause this VM's cores take ~20 ms to reach full speed again, and a
    single warm-up call would charge that ramp to the contender measured first."""
    time.sleep(settle_seconds)
    t0 = time.perf_counter()
    fn(x)
    while time.perf_counter() - t0 < warmup_seconds:
        fn(x)
    calls, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / calls


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--shapes", default="1024,4096", help="square layer sizes")
    ap.add_argument("--no-mlp", action="store_true", help="skip the whole-model (MLP) tables")
    ap.add_argument("--no-layers", action="store_true", help="skip the single-layer table")
    ap.add_argument("--orders", default=None, help="native orders of the layer table, comma-separated (default: all)")
    ap.add_argument("--planted", default=None, metavar="EIGHTHS,TRAVERSAL,MIN_WORK",
                    help="also time seq under this GEMM schedule (e.g. another machine kind's), interleaved with "
                         "the tuned one: the columns 'planted' and 'tuned/planted'")
    args = ap.parse_args(argv)
    import torch

    threads = args.threads or bc.info()["cpu_count"]
    torch.set_num_threads(threads)
    shapes = [(64, 64)] if args.quick else [(int(s), int(s)) for s in args.shapes.split(",")]
    batch_sizes = [1, 8] if args.quick else [1, 2, 3, 4, 8, 16, 64, 256, 1024]
    orders = ["seq"] if args.quick else ["seq", "seq-nofma", "chunk:256", "splitk:4", "lanes:16", "f64", "pairwise",
                                         "kahan", "dot2"]
    if args.orders:
        orders = args.orders.split(",")
        if "seq" not in orders:
            ap.error("--orders must include seq (the table's ratios are seq's)")
    repeats = 3 if args.quick else args.repeats
    env = bc.info()
    probe = bc.probe(threads=threads)
    peak = probe.peak_gflops
    print(f"# measured fma peak {peak:.0f} GFLOP/s on {threads} threads; 'peak%' is seq's fraction of it")
    ident = env["cpu_identity"]
    print(f"# {env['cpu']} (family {ident['cpu family']}, model {ident['model']}), {env['cpu_count']} cores, "
          f"{env['simd']}; torch {env['torch']} ({threads} threads), "
          f"numpy {env['numpy']}, batchcore {env['batchcore']}; median of {repeats} interleaved repeats")
    print(blas_line())
    caches = env["cpu_caches"]
    print(f"# caches per core ({caches['source']}): L1d {caches['l1d_bytes'] >> 10} KiB, L2 {caches['l2_bytes'] >> 10} KiB; "
          f"tiles sized from L2 {caches['blocking_l2_bytes'] >> 10} KiB")
    bc.native()  # the first native backend puts the machine's tuning in force (read from the cache, or measured)
    from batchcore.measure import tuning

    tuned = tuning.in_force()
    print(f"# GEMM tuning: {tuned.tile_l2_eighths}/8 of L2 per row tile, traversal {tuned.traversal}, "
          f"2^{tuned.min_work_log2} flops per worker ({tuned.source}; gain over the defaults {tuned.gain})")
    planted = None
    if args.planted:
        e, t, m = args.planted.split(",")
        planted = tuning.Tuning(int(e), t, int(m), source="planted")
        planted.knobs()  # a traversal not in the list fails here
        print(f"# planted schedule: {e}/8 of L2, {t}, 2^{m}; timed interleaved with the tuned one")
    extra = ["planted"] if planted else []
    print(f"{'shape':>10} {'B':>5} {'torch':>8} {'numpy':>8} " + " ".join(f"{o:>10}" for o in orders + extra)
          + f" {'seq/torch':>9} {'peak%':>6}" + (f" {'tuned/planted':>13}" if planted else "") + "   (GFLOP/s)")
    streams = []  # B = 1: the weights read once per call (GB/s), native seq and torch
    for k, n in [] if args.no_layers else shapes:
        model = bc.mlp([k, n], seed=0)
        module = bc.backends.module_on(model, "cpu")
        W = model.layers[0].params["weight"]
        b = model.layers[0].params["bias"]
        natives = {o: bc.native(order=o, threads=threads) for o in orders}
        core = bc.backends.cpu_model(model)
        for B in batch_sizes:
            x = np.random.default_rng(B).standard_normal((B, k)).astype(np.float32)
            xt = torch.from_numpy(x)
            exact = bc.native(order="exact").run(model, x)
            # Validate before timing: libraries within 1e-4 relative of exact, native orders bit-stable.
            assert np.allclose(module(xt).detach().numpy(), exact, rtol=1e-4, atol=1e-4)
            assert np.allclose(x @ W.T + b, exact, rtol=1e-4, atol=1e-4)
            for o, nb in natives.items():
                y = nb.run(model, x)
                assert np.allclose(y, exact, rtol=1e-4, atol=1e-4), o
                assert np.array_equal(nb.run(model, x[:1]), y[:1]), o

            def native_call(o, schedule=tuned):
                options = natives[o].options  # parsed once, as every native call takes them
                if planted is None:
                    return lambda v: core.run(v, options)
                return lambda v: (tuning.apply(schedule), core.run(v, options))[1]  # both columns pay the switch

            if planted is not None:
                tuning.apply(planted)
                assert np.array_equal(core.run(x, natives["seq"].options)[0], natives["seq"].run(model, x))
            samples = {name: [] for name in ["torch", "numpy", *orders, *extra]}
            with torch.no_grad():
                for _ in range(repeats):
                    samples["torch"].append(timed_block(module, xt))
                    samples["numpy"].append(timed_block(lambda v: v @ W.T + b, x))
                    for o in orders:
                        samples[o].append(timed_block(native_call(o), x))
                    if planted is not None:
                        samples["planted"].append(timed_block(native_call("seq", planted), x))
            tuning.apply(tuned)
            flops = 2 * B * k * n
            if B == 1:
                streams.append((k, n, *(4 * k * n / float(np.median(samples[c])) / 1e9 for c in ("seq", "torch"))))
            med = {name: gflops(flops, float(np.median(s))) for name, s in samples.items()}
            print(f"{k}x{n:<5} {B:>5} {med['torch']:8.1f} {med['numpy']:8.1f} "
                  + " ".join(f"{med[o]:10.1f}" for o in orders + extra)
                  + f" {med['seq'] / med['torch']:9.2f} {100 * med['seq'] / peak:6.1f}"
                  + (f" {med['seq'] / med['planted']:13.2f}" if planted else ""))
    for k, n, seq_gbs, torch_gbs in streams:
        probe_gbs = probe.bandwidth_for(4 * k * n)
        print(f"# B=1, {k}x{n}: the weights ({4 * k * n / 2**20:.0f} MiB) read at {seq_gbs:.1f} GB/s by seq, "
              f"{torch_gbs:.1f} by torch; the probe's triad streams {probe_gbs:.1f} GB/s at that size "
              f"(seq at {100 * seq_gbs / probe_gbs:.0f} % of it)")
    if not args.no_mlp:
        mlp_table(batch_sizes, repeats, threads, MLPS[:1] if args.quick else MLPS)
    exact_table(64 if args.quick else 1024, [1] if args.quick else [1, 16], 3 if args.quick else 5, threads)


MLPS = [([784, 128, 10], "relu", "softmax"), ([256, 512, 512, 32], "relu", None), ([256, 512, 512, 32], "gelu", None)]


def linears_only(model):
    """The model's linear layers alone (the same parameters): the GEMMs' share of the model's time."""
    return bc.Model([layer for layer in model.layers if layer.kind == "linear"], model.input_width)


def mlp_table(batch_sizes, repeats, threads, mlps=MLPS):
    """Whole MLPs: native seq against the same model in torch and in NumPy (its BLAS, activations in numpy;
    GELU through scipy's erf), interleaved like the layer table. 'gemm%': the time of the model's linear
    layers alone over the model's time, both native (the rest is the row layers and the copies)."""
    import torch

    for sizes, activation, head in mlps:
        model = bc.mlp(sizes, activation=activation, head=head, seed=0)
        gemms = linears_only(model)
        module, native = bc.backends.module_on(model, "cpu"), bc.native(order="seq", threads=threads)
        core, core_gemms = bc.backends.cpu_model(model), bc.backends.cpu_model(gemms)
        name = "MLP " + "-".join(map(str, sizes)) + f" {activation}" + (f" {head}" if head else "")
        print(f"\n{name:>30} {'B':>5} {'torch':>8} {'numpy':>8} {'seq':>8} {'seq/torch':>9} {'seq/numpy':>9} "
              f"{'gemm%':>6}   (GFLOP/s of the linear layers)")
        for B in batch_sizes:
            x = np.random.default_rng(B).standard_normal((B, sizes[0])).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.no_grad():
                want = native.run(model, x)
                assert np.allclose(module(xt).numpy(), want, rtol=1e-4, atol=1e-5)
                assert np.allclose(bc.backends.array_forward(np, model, x), want, rtol=1e-4, atol=1e-5)
                times = {k: [] for k in ("torch", "numpy", "seq", "gemms")}
                for _ in range(repeats):
                    times["torch"].append(timed_block(module, xt))
                    times["numpy"].append(timed_block(lambda v: bc.backends.array_forward(np, model, v), x))
                    times["seq"].append(timed_block(lambda v: core.run(v, native.options), x))
                    times["gemms"].append(timed_block(lambda v: core_gemms.run(v, native.options), x))
            med = {k: float(np.median(v)) for k, v in times.items()}
            g = {k: gflops(model.flops_per_row * B, med[k]) for k in ("torch", "numpy", "seq")}
            print(f"{'':>30} {B:>5} {g['torch']:8.1f} {g['numpy']:8.1f} {g['seq']:8.1f} {g['seq'] / g['torch']:9.2f} "
                  f"{g['seq'] / g['numpy']:9.2f} {100 * med['gemms'] / med['seq']:6.1f}")


def exact_table(n, batch_sizes, repeats, threads):
    """`exact` against a float64 long-accumulator reference written naively: per output element,
    math.fsum (Shewchuk's exactly rounded partials) of the float64 products, which are exact, plus the
    bias; then one rounding to float32 (a double rounding: the reference is only a speed yardstick)."""
    import math

    model = bc.mlp([n, n], seed=0)
    W = model.layers[0].params["weight"].astype(np.float64)
    b = model.layers[0].params["bias"].astype(np.float64)
    core, exact = bc.backends.cpu_model(model), bc.orders.run_options("exact", threads=threads)

    def naive(x):
        x64 = x.astype(np.float64)
        return np.array([[math.fsum([*(row * w), bj]) for w, bj in zip(W, b, strict=False)] for row in x64], np.float32)

    print(f"\n{'exact ' + f'{n}x{n}':>16} {'B':>5} {'exact':>8} {'fsum ref':>8} {'ratio':>9}   (GFLOP/s)")
    for B in batch_sizes:
        x = np.random.default_rng(B).standard_normal((B, n)).astype(np.float32)
        got, ref = core.run(x, exact)[0], naive(x)
        assert np.all(np.abs(got - ref) <= np.spacing(np.abs(got)))  # equal but for the reference's double rounding
        t_exact, t_ref = [], []
        for _ in range(repeats):
            t_exact.append(timed_block(lambda v: core.run(v, exact), x))
            t_ref.append(timed_block(naive, x))
        g_exact = gflops(2 * B * n * n, float(np.median(t_exact)))
        g_ref = gflops(2 * B * n * n, float(np.median(t_ref)))
        print(f"{'':>16} {B:>5} {g_exact:8.2f} {g_ref:8.2f} {g_exact / g_ref:9.1f}")


if __name__ == "__main__":
    main()
