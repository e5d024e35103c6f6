"""What the digits examples share: scikit-learn's bundled digits (1,797 8 x 8 images, no download), a
stratified split, a short training loop, and the sweep they end with."""

from __future__ import annotations

import argparse

import torch

import batchcore as bc
from batchcore import studies


def parse_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="fewer epochs and batch sizes, a short timer (CI smoke)")
    ap.add_argument("--out", default=None, help="also log the sweep's points to this JSON-lines file")
    return ap.parse_args()


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test images (N, 1, 8, 8) float32 scaled to [0, 1], and int64 labels; 25 % held out."""
    return studies.digits.load()


def train(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    """Adam on cross-entropy, shuffled mini-batches of 64; returns the seconds it took."""
    return studies.digits.train(net, x, y, epochs)


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


def study_args(description: str) -> argparse.Namespace:
    """The studies' command line: --quick (seconds, for CI) and --out (the study as JSON, for batchcore report)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer epochs, seeds, sizes and samples (seconds)")
    ap.add_argument("--out", default=None, help="write the study as JSON; then: batchcore report OUT -o page.html")
    return ap.parse_args()


def show(study: bc.studies.Study, out: str | None) -> None:
    """Print the study (question, verdict, tables) and write it to ``out`` when given."""
    print(study)
    if out:
        study.to_json(out)
