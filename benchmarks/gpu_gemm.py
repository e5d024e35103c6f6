"""GPU linear-layer throughput: batchcore's native `seq` kernel against cuBLAS (through torch) in fp32
(TF32 off), TF32 and bf16, per batch size, and the invariance classes cuBLAS shows across batch sizes.

Every contender is timed by bc.Timer's policy (warm-up >= 25 ms, samples until the 95 % CI of the median
is within 1 % or 15 s) with CUDA events around back-to-back launches, input already on the device.
Before timing, the native kernel is validated bit for bit against the CPU core (its definition), and
cuBLAS fp32 against the `exact` order within a tolerance.

    python benchmarks/gpu_gemm.py                 # 1024², 4096², 8192²; B = 1, 2, 4, ..., 4096
    python benchmarks/gpu_gemm.py --quick         # one small shape (a smoke test; asserts no speed)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import batchcore as bc


def torch_timer(torch, fn, timer):
    """bc.Timer's policy on a torch callable, sampled with CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def call():
        fn()
        torch.cuda.synchronize()

    def sample(calls):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e6

    return timer.measure(call, sample=sample)


def validate(torch, model, layer, n):
    x = np.random.default_rng(1).standard_normal((64, n)).astype(np.float32)
    cpu = bc.native(order="seq", device="cpu").run(model, x)
    gpu = bc.native(order="seq", device="cuda").run(model, x)
    if not np.array_equal(cpu.view(np.uint32), gpu.view(np.uint32)):
        raise SystemExit(f"native GPU seq differs from the CPU core's bits at n={n}: not timing a wrong kernel")
    exact = bc.native(order="exact", device="cpu").run(model, x)
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        ref = layer(torch.from_numpy(x).cuda()).cpu().numpy()
    err = np.max(np.abs(ref - exact)) / np.max(np.abs(exact))
    if err > 1e-5:
        raise SystemExit(f"cuBLAS fp32 is {err:.2g} away from exact at n={n}: TF32 still on?")


def classes(torch, layer, n, batch_sizes, rows=512):
    """Per cuBLAS mode: batch sizes grouped by identical output bits over `rows` rows run in batches."""
    data = torch.from_numpy(np.random.default_rng(2).standard_normal((rows, n)).astype(np.float32)).cuda()
    out = {}
    for mode in ("fp32", "tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        mod = layer.to(torch.bfloat16) if mode == "bf16" else layer.float()
        fps = {}
        with torch.no_grad():
            for B in batch_sizes:
                xs = data.to(torch.bfloat16) if mode == "bf16" else data
                y = torch.cat([mod(xs[i:i + B]) for i in range(0, rows, B)]).float().cpu().numpy()
                fps[B] = bc.numerics.fingerprint(np.ascontiguousarray(y))
        out[mode] = bc.numerics.invariance_classes(fps)
    layer.float()
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shapes", default="1024,4096,8192")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("this benchmark needs torch with CUDA") from None
    if bc.devices.gpu_count() == 0 or not torch.cuda.is_available():
        print("no CUDA GPU visible (batchcore's core or torch): nothing to measure", file=sys.stderr)
        return 1
    shapes = [256] if args.quick else [int(s) for s in args.shapes.split(",")]
    batch_sizes = [1, 8, 64] if args.quick else [2**i for i in range(13)]
    timer = bc.Timer(min_time_s=0.05, timeout_s=1) if args.quick else bc.Timer()
    env = bc.info()
    print(f"GPU {env['gpus']}, CUDA runtime {env['cuda_runtime']}, torch {torch.__version__} "
          f"(cuBLAS), batchcore {env['batchcore']}; medians of bc.Timer samples (CUDA events)\n")
    for n in shapes:
        model = bc.mlp([n, n], seed=0)
        layer = bc.backends.module_on(model, "cuda")[0]
        validate(torch, model, layer, n)
        native = bc.native(order="seq", device="cuda")
        print(f"Linear {n}x{n}: ms per batch (ratio = cuBLAS time / native time: > 1 means native is faster)")
        print(f"{'B':>5} {'native seq':>11} {'cuBLAS fp32':>12} {'ratio':>6} {'TF32':>9} {'bf16':>9} {'native TFLOP/s':>15}")
        for B in batch_sizes:
            x = np.random.default_rng(B).standard_normal((B, n)).astype(np.float32)
            t_native = native.measure(model, x, timer).timing.median_ms
            xd = torch.from_numpy(x).cuda()
            times = {}
            with torch.no_grad():
                for mode in ("fp32", "tf32", "bf16"):
                    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
                    mod = layer.to(torch.bfloat16) if mode == "bf16" else layer.float()
                    xm = xd.to(torch.bfloat16) if mode == "bf16" else xd
                    times[mode] = torch_timer(torch, lambda: mod(xm), timer).median_ms
            layer.float()
            torch.backends.cuda.matmul.allow_tf32 = False
            tflops = 2 * B * n * n / (t_native * 1e-3) / 1e12
            print(f"{B:>5} {t_native:>11.4f} {times['fp32']:>12.4f} {times['fp32'] / t_native:>6.2f} "
                  f"{times['tf32']:>9.4f} {times['bf16']:>9.4f} {tflops:>15.2f}")
        print(f"\ncuBLAS invariance classes at {n}x{n} (batch sizes with identical output bits):")
        for mode, groups in classes(torch, layer, n, batch_sizes).items():
            print(f"  {mode}: {len(groups)} class(es): " + "  ".join("{" + ", ".join(map(str, g)) + "}" for g in groups))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
