"""The studies on real data that ships with a package: scikit-learn's bundled digits (1,797 8 x 8 images,
no download), the small CNN the examples train on them, and ``run(name)`` behind ``batchcore study NAME``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import ArgumentError, MissingDependencyError
from .record import Study

STUDY_NAMES = ("accuracy", "evaluation", "training", "performance", "deployment")


def load() -> tuple[Any, Any, Any, Any]:
    """Train and test images (N, 1, 8, 8) float32 tensors scaled to [0, 1], and int64 labels; 25 % held
    out, stratified, with a fixed seed (450 test images)."""
    try:
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise MissingDependencyError(f"the digits studies need torch and scikit-learn ({e.name} is missing): "
                                     "pip install torch==2.13.0 'batchcore[examples]'") from None
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te)


def cnn(seed: int = 0) -> Any:
    """Two 3x3 convolutions with ReLU and 2x2 max pooling, then a linear layer to 10 classes."""
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 4 x 4
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 2 x 2
                         nn.Flatten(), nn.Linear(128, 10))


def wide_mlp(seed: int = 0) -> Any:
    """A wide MLP on the flattened image (64-2048-2048-10): passes of a few tenths of a millisecond on one
    core, a model worth putting behind a server (the CNN's tens of microseconds are less than a Python
    queue's own hand-offs)."""
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                         nn.Linear(2048, 10))


def cnn_bn(seed: int = 0) -> Any:
    """The CNN with batch normalisation after each convolution."""
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def train(net: Any, x: Any, y: Any, epochs: int, batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> float:
    """Adam on cross-entropy over shuffled mini-batches (the shuffle drawn from ``seed``); the network is
    left in eval mode. Returns the seconds it took."""
    import torch

    torch.manual_seed(seed)
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


def run(name: str, quick: bool = False, progress: bool | None = None) -> Study:
    """Study ``name`` (one of STUDY_NAMES) on the digits with the CNN above; ``quick``: fewer epochs, seeds,
    batch sizes and samples (seconds, for CI)."""
    from ..backends import native, torch
    from ..measure.timing import Timer
    from .accuracy import accuracy
    from .deployment import deployment
    from .evaluation import evaluation
    from .performance import performance
    from .training import training

    if name not in STUDY_NAMES:
        raise ArgumentError(f"no study named {name!r}; the studies are {', '.join(STUDY_NAMES)}")
    x_tr, y_tr, x_te, y_te = load()
    epochs = 2 if quick else 15
    if name == "training":
        return training(cnn, cnn_bn, train, x_tr, y_tr, x_te, y_te, batch_sizes=(32, 128, 512),
                        seeds=(0, 1) if quick else (0, 1, 2, 3, 4), epochs=epochs, bn_sizes=(2, 8, 64, len(x_te)),
                        progress=progress)
    net = wide_mlp() if name == "deployment" else cnn()
    seconds = train(net, x_tr, y_tr, epochs=epochs)
    backends = [torch(), native(order="seq")]
    if name == "accuracy":
        sizes = [1, 8, 64] if quick else [1, 2, 8, 64, 256, len(x_te)]
        study = accuracy(net, x_te, y_te, batch_sizes=sizes, backends=backends, progress=progress)
    elif name == "evaluation":
        sizes = [1, 8, 64] if quick else [1, 8, 32, 128, len(x_te)]
        study = evaluation(net, x_te, y_te, batch_sizes=sizes, backends=backends, progress=progress)
    elif name == "performance":
        import torch as th

        every = th.cat([x_tr, x_te])  # 1,797 digits: batches up to 1,024
        sizes = [1, 8, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        timer = Timer(min_time_s=0, timeout_s=0.2, target=0.2) if quick else Timer(min_time_s=0.2, timeout_s=3, target=0.02)
        study = performance(net, every, batch_sizes=sizes, backends=backends, budget_bytes=2**24, latency_ms=1.0,
                            timer=timer, rounds=1 if quick else 3, progress=progress)
    else:
        study = deployment(net, x_te, max_batch_sizes=(1, 4, 16) if quick else (1, 2, 4, 8, 16, 32),
                           max_delays_ms=(0.0, 1.0) if quick else (0.0, 0.5, 2.0), requests=600 if quick else 4000,
                           service_samples=10 if quick else 60, backend=native(threads=1), progress=progress)
    what = "A 64-2048-2048-10 MLP" if name == "deployment" else "A CNN (2 conv + pool, 1 linear)"
    study.notes.insert(0, f"{what} trained for {epochs} epochs in batches of 64 on {len(x_tr)} digits in {seconds:.1f} s.")
    return study
