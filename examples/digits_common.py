"""What the digits examples share: scikit-learn's bundled digits (1,797 8 x 8 images, no download), a
stratified split, a short training loop, and the sweep they end with."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import batchcore as bc


def parse_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="fewer epochs and batch sizes, a short timer (CI smoke)")
    ap.add_argument("--out", default=None, help="also log the sweep's points to this JSON-lines file")
    return ap.parse_args()


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test images (N, 1, 8, 8) float32 scaled to [0, 1], and int64 labels; 25 % held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te)


def train(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int = 64,
          lr: float = 3e-3) -> float:
    """Adam on cross-entropy, shuffled mini-batches; returns the seconds it took."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    t0 = time.perf_counter()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    return time.perf_counter() - t0


def sweep_and_print(net: torch.nn.Module, x_te: torch.Tensor, y_te: torch.Tensor, quick: bool, out: str | None,
                    train_s: float) -> bc.SweepResult:
    """Accuracy and the batch size's effect on the held-out digits: torch and the native core (read by
    bc.from_torch through torch.fx: seq and pairwise orders) in float32, then torch in bfloat16."""
    with torch.no_grad():
        acc = float((net(x_te).argmax(1) == y_te).float().mean())
    print(f"trained in {train_s:.1f} s; test accuracy {acc:.4f} on {len(x_te)} held-out digits")
    sizes = [1, 8, 64] if quick else [1, 2, 8, 64, 256, len(x_te)]
    timer = bc.Timer(min_time_s=0, timeout_s=0.5, target=0.5) if quick else bc.Timer(min_time_s=0.2, timeout_s=3, target=0.02)
    backends = [bc.torch(), bc.native(order="seq"), bc.native(order="pairwise")]
    res = bc.sweep(net, data=x_te, labels=y_te.numpy(), batch_sizes=sizes, backends=backends, timer=timer,
                   rounds=1 if quick else 3, out=out)
    print(res.table())
    print(res.classes())
    half = bc.sweep(net.to(torch.bfloat16), data=x_te.to(torch.bfloat16), labels=y_te.numpy(), batch_sizes=sizes,
                    backends=[bc.torch()], timer=timer, rounds=1 if quick else 3)
    net.float()
    print("\nthe same network in bfloat16 (ULPs in bfloat16):")
    print(half.table())
    print(half.classes())
    return res
