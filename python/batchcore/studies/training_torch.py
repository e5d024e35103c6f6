"""The training study's measurements (:mod:`batchcore.studies.training`) for a torch module: test
accuracy, one step's gradient against accumulated steps (``backward()`` into ``.grad``), and BatchNorm in
train and eval mode."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..results import numerics


def test_accuracy(net: Any, x: Any, y: Any) -> float:
    import torch

    with torch.no_grad():
        return float((net.eval()(x).argmax(1) == y).float().mean())


def accumulation(net: Any, x: Any, y: Any, steps: int) -> dict[str, Any]:
    """One step's gradient over the rows of ``x`` against ``steps`` accumulated steps over equal slices, and
    both against the float64 gradient (the same weights and rows in double precision)."""
    import torch
    from torch.nn import functional as F

    def grads(model: Any, chunks: int, dtype: Any) -> np.ndarray:
        model.zero_grad()
        for xs, ys in zip(x.to(dtype).chunk(chunks), y.chunk(chunks), strict=False):
            (F.cross_entropy(model(xs), ys) / chunks).backward()
        return np.concatenate([p.grad.detach().cpu().numpy().ravel() for p in model.parameters()])

    net.train()
    one, acc = grads(net, 1, torch.float32), grads(net, steps, torch.float32)
    ref = grads(copy.deepcopy(net).double(), 1, torch.float64)
    net.zero_grad()

    def rel(g: np.ndarray) -> float:
        return float(np.linalg.norm(g.astype(np.float64) - ref) / np.linalg.norm(ref))

    return {"rows": len(x), "steps": steps, "elements": int(one.size),
            "equal_frac": numerics.bitwise_equal_frac(one, acc), "max_ulp": numerics.max_ulp(one, acc),
            "one_step_rel_err_vs_f64": rel(one), "accumulated_rel_err_vs_f64": rel(acc)}


def batchnorm_outputs(net: Any, x: Any, mode: str, sizes: list[int]) -> dict[int, np.ndarray]:
    """Per B the logits over x in batches of B, in train mode (batch statistics; a copy runs, so the
    network's running statistics are untouched) or eval mode."""
    import torch

    with torch.no_grad():
        model = copy.deepcopy(net)
        model.train(mode == "train")
        return {B: torch.cat([model(x[i:i + B]) for i in range(0, len(x), B)]).numpy() for B in sizes}


NOTE = ("Accumulation: each of the k losses is divided by k (a power of two here, so exactly) and backward() adds "
        "into .grad in float32; relative errors: ||g - g64|| / ||g64|| over all parameters, g64 the same step in "
        "float64.")
