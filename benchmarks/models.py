"""Real architectures in the native core against torch: a ResNet-style block (two 3x3 convolutions of 64
channels with batch norm, ReLU and the residual, on 32x32 inputs) and a 4-layer transformer encoder
(d_model 256, 4 heads, feed-forward 1024, sequences of 128), both read by bc.from_torch.

Interleaved measurement as benchmarks/cpu_gemm.py does it (a pause, a warm-up, then a block of calls per
sample; torch and native alternate within every repeat; medians). Before anything is timed, each native
result is validated: batch invariant (the first sample of every batch equals it alone, bit for bit) and
within the error torch itself has against the exactly rounded reference.

    python benchmarks/models.py            # the tables (several minutes)
    python benchmarks/models.py --quick    # smoke test for CI (small shapes; asserts nothing about speed)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from cpu_gemm import timed_block

import batchcore as bc

nn = torch.nn


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


def models(quick):
    torch.manual_seed(0)
    channels, side = (8, 8) if quick else (64, 32)
    block = ResidualBlock(channels).eval()
    with torch.no_grad():
        for bn in (block.bn1, block.bn2):
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    d_model, heads, ff, length, layers = (32, 4, 64, 16, 2) if quick else (256, 4, 1024, 128, 4)
    layer = nn.TransformerEncoderLayer(d_model, heads, ff, batch_first=True)
    encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()
    return [(f"ResNet block {channels}ch {side}x{side}", block, (channels, side, side)),
            (f"encoder {layers}x(d{d_model}, {heads} heads, ff {ff}), seq {length}", encoder, (length, d_model))]


def validate(name, module, model, native, x):
    """Native batch invariant, and as close to torch as torch is to the exactly rounded reference."""
    alone = native.run(model, x[:1])
    full = native.run(model, x)
    assert full[:1].tobytes() == alone.tobytes(), f"{name}: native is not batch invariant"
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    exact = bc.native(order="exact").run(model, x[:2])
    torch_err = float(np.abs(ref[:2] - exact).max())
    native_err = float(np.abs(full[:2] - exact).max())
    gap = float(np.abs(full - ref).max())
    assert gap <= 4 * max(torch_err, native_err) + 1e-6, f"{name}: native and torch differ by {gap:g}"
    return torch_err, native_err


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 2, 8, 32, 64, 128, 256])
    args = ap.parse_args(argv)
    env = bc.info()
    threads = env["cpu_count"]
    torch.set_num_threads(threads)
    ident = env["cpu_identity"]
    print(f"# {env['cpu']} (family {ident['cpu family']}, model {ident['model']}), {threads} cores; "
          f"torch {torch.__version__}; batchcore {bc.__version__}")
    sizes = [1, 2, 4] if args.quick else args.batch_sizes
    repeats = 1 if args.quick else args.repeats
    native = bc.native(order="seq", threads=threads)  # the first native backend puts the machine's tuning in force
    print(f"# GEMM tuning: {native.settings()['gemm_tuning']}")
    for name, module, shape in models(args.quick):
        model = bc.from_torch(module, input_shape=shape)
        x_all = np.random.default_rng(0).standard_normal((max(sizes), *shape)).astype(np.float32)
        torch_err, native_err = validate(name, module, model, native, x_all[: min(4, len(x_all))])
        print(f"\n## {name}: {model.flops_per_row / 1e6:.1f} MFLOP per sample; max error vs exact: "
              f"torch {torch_err:.2e}, native seq {native_err:.2e}")
        print("| B | torch ms | native seq ms | native/torch speed | native GFLOP/s | native peak MiB (exact) |")
        print("|---|---|---|---|---|---|")
        for B in sizes:
            x = np.ascontiguousarray(x_all[:B])
            xt = torch.from_numpy(x)
            core = bc.backends.cpu_model(model)
            peak = native.plan_bytes(model, B)
            times = {"torch": [], "native": []}
            with torch.no_grad():
                for _ in range(repeats):
                    times["torch"].append(timed_block(module, xt))
                    times["native"].append(timed_block(lambda a: core.run(a, native.options), x))
            t_torch, t_native = (float(np.median(times[k])) for k in ("torch", "native"))
            print(f"| {B} | {1e3 * t_torch:.3f} | {1e3 * t_native:.3f} | {t_torch / t_native:.2f}x | "
                  f"{model.flops_per_row * B / t_native / 1e9:.1f} | {peak / 2**20:.1f} |")


if __name__ == "__main__":
    main()
