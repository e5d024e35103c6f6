"""Study 2: evaluating with another batch size than training used (``model.evaluate(x, y, batch_size=B)``).

An evaluation loop runs the test set in batches of B and reports a loss and an accuracy. Two things can
change the loss's bits with B, and the study tells them apart:

- **the logits**: the library computes each row's outputs in an order that depends on B (compared bit
  for bit with B=1, as in a sweep);
- **the reduction**: an evaluation loop averages each batch's mean loss weighted by its size, in float32
  (as Keras's ``evaluate`` and most hand-written loops do), so the per-row losses are added in another
  grouping at every B. The same per-row losses summed exactly (``math.fsum``, then divided by the rows)
  do not depend on B: the study reports that loss too.

The accuracy counts argmax hits, a sum of integers: it changes only when a prediction does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backends import Backend
from ..info import info
from ..present.progress import Steps
from ..results import numerics
from ..run.sweep import check_batch_sizes
from .outputs import check_labels, logits_runner, reported_loss_runner
from .record import Study, Table

QUESTION = "Does evaluating at another batch size than training change the loss and the accuracy?"


def row_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row in float32 (torch's), one row at a time in effect: no sum across rows."""
    import torch

    return torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels),
                                             reduction="none").numpy()


def evaluate_loss(logits: np.ndarray, labels: np.ndarray, B: int) -> np.float32:
    """The loss an evaluation loop reports: each batch's mean cross-entropy (torch, float32) weighted by its
    rows, summed in batch order in float32, divided by the rows."""
    import torch

    total = torch.zeros((), dtype=torch.float32)
    for i in range(0, len(labels), B):
        part = torch.nn.functional.cross_entropy(torch.from_numpy(logits[i:i + B]), torch.from_numpy(labels[i:i + B]))
        total = total + part * len(labels[i:i + B])
    return np.float32((total / len(labels)).item())


def exact_mean(values: np.ndarray) -> float:
    """The mean of float32 values with the sum exactly rounded (``math.fsum``): the same at any grouping."""
    return math.fsum(float(v) for v in values) / len(values)


def why(logits_equal: bool, loss_equal: bool) -> str:
    if loss_equal:
        return "-" if logits_equal else "logits differ, the loss's bits happen not to"
    if logits_equal:
        return "the reduction: per-batch means weighted in float32"
    return "the logits (the kernel's order changes with B) and the reduction"


def evaluation(module: Any, data: Any, labels: Any, batch_sizes: Any = (1, 8, 32, 128, 512),
               backends: list[Backend] | None = None, progress: bool | None = None) -> Study:
    """Study 2 on ``module`` over ``data`` with integer ``labels``: per backend (default ``[bc.torch()]``) and
    evaluation batch size, the loss an evaluation loop reports (float32, per-batch means), whether its bits
    equal B=1's and why not, the loss summed exactly, and the accuracy. ``study.data["points"]`` holds them."""
    from ..backends import torch as torch_backend

    sizes = check_batch_sizes(batch_sizes)
    sizes = [1] + [B for B in sizes if B != 1]
    backends, run, rows, fmt = logits_runner(module, data, [torch_backend()] if backends is None else backends, sizes)
    labels = check_labels(labels, rows).astype(np.int64)
    reported = reported_loss_runner(module, data, backends)
    points = []
    with Steps("evaluation study", len(backends) * len(sizes), progress) as steps:
        for backend in backends:
            y_b1 = loss_b1 = own_b1 = None
            for B in sizes:
                steps.now(f"{backend.label} B={B}")
                y = run(backend, B).astype(np.float32)
                loss = evaluate_loss(y, labels, B)
                y_b1 = y if y_b1 is None else y_b1
                loss_b1 = loss if loss_b1 is None else loss_b1
                logits_equal = bool(numerics.bitwise_equal(y, y_b1).all())
                loss_equal = loss.view(np.uint32) == loss_b1.view(np.uint32)
                ulp = numerics.max_ulp(np.array([loss]), np.array([loss_b1]))
                points.append({"backend": backend.label, "batch_size": B, "loss": float(loss),
                               "loss_equal_b1": bool(loss_equal), "loss_ulp_vs_b1": ulp,
                               "loss_exact_sum": exact_mean(row_losses(y, labels)),
                               "logits_equal_frac": numerics.bitwise_equal_frac(y, y_b1),
                               "accuracy": float((y.argmax(1) == labels).mean()), "why": why(logits_equal, bool(loss_equal)),
                               **_own_loss(*reported(backend, labels, B), own_b1)})
                own_b1 = points[-1]["reported_loss"] if own_b1 is None else own_b1
                steps.done()
    return Study("evaluation", QUESTION, verdict(points), tables(points), notes(rows, fmt), {"points": points}, info())


def _own_loss(value: float | None, how: str, value_b1: float | None) -> dict[str, Any]:
    """The framework's own reported loss at this B (Keras's ``evaluate``), compared bit for bit with B=1's."""
    if value is None:
        return {"reported_loss": None, "reported_loss_how": how, "reported_loss_equal_b1": None,
                "reported_loss_ulp_vs_b1": None}
    first = np.float32(value if value_b1 is None else value_b1)
    return {"reported_loss": value, "reported_loss_how": how,
            "reported_loss_equal_b1": bool(np.float32(value).view(np.uint32) == first.view(np.uint32)),
            "reported_loss_ulp_vs_b1": numerics.max_ulp(np.array([value], np.float32), np.array([first]))}


def _own_sentence(pts: list[dict[str, Any]]) -> str:
    """What the framework's own reported loss did across B, for the verdict ("" where it reports none)."""
    own = [p for p in pts if p["reported_loss"] is not None]
    if not own:
        return ""
    moved = [p for p in own if not p["reported_loss_equal_b1"]]
    what = own[0]["reported_loss_how"].split(" with")[0]
    if not moved:
        return f"; the loss its framework reports ({what}) has the same bits at every B"
    return (f"; the loss its framework reports ({what}) differs from B=1's at {len(moved)} of {len(own) - 1} sizes, "
            f"by up to {max(p['reported_loss_ulp_vs_b1'] for p in own)} ULP")


def verdict(points: list[dict[str, Any]]) -> str:
    parts = []
    for label in dict.fromkeys(p["backend"] for p in points):
        pts = [p for p in points if p["backend"] == label]
        changed = [p for p in pts if not p["loss_equal_b1"]]
        exact_same = len({p["loss_exact_sum"] for p in pts}) == 1
        accs = {p["accuracy"] for p in pts}
        if not changed:
            parts.append(f"{label}: the same loss bits at every evaluation batch size" + _own_sentence(pts))
            continue
        causes = {p["why"] for p in changed}
        cause = ("its logits change with B and so does the reduction's grouping" if any("logits" in c for c in causes)
                 else "its logits are batch invariant; only the reduction's grouping changes")
        parts.append(f"{label}: the loss's bits differ from B=1's at {len(changed)} of {len(pts) - 1} sizes, by up to "
                     f"{max(p['loss_ulp_vs_b1'] for p in pts)} ULP ({cause}); summed exactly the loss is "
                     + ("the same at every B" if exact_same else "still B-dependent (the logits differ)"))
        if len(accs) > 1:
            parts[-1] += f"; the accuracy moves between {100 * min(accs):.2f} and {100 * max(accs):.2f} %"
        parts[-1] += _own_sentence(pts)
    same_acc = all(len({p["accuracy"] for p in points if p["backend"] == b}) == 1 for b in {p["backend"] for p in points})
    return "; ".join(parts) + (". The accuracy is the same at every B." if same_acc else ".")


def tables(points: list[dict[str, Any]]) -> list[Table]:
    own = [p for p in points if p["reported_loss"] is not None]
    reported = [Table("The loss the framework itself reports (" + own[0]["reported_loss_how"] + ")",
                      ["backend", "B", "reported loss", "bits = B1", "ULP vs B1", "our loop's loss"],
                      [[p["backend"], p["batch_size"], f"{p['reported_loss']:.9g}",
                        "yes" if p["reported_loss_equal_b1"] else "no", p["reported_loss_ulp_vs_b1"], f"{p['loss']:.9g}"]
                       for p in own])] if own else []
    return [Table("Loss and accuracy per evaluation batch size (loss: per-batch means weighted in float32, as "
                  "evaluation loops report it; exact: per-row losses summed exactly)",
                  ["backend", "B", "loss", "bits = B1", "ULP vs B1", "loss, exact sum", "logits = B1 bits", "accuracy %", "why"],
                  [[p["backend"], p["batch_size"], f"{p['loss']:.9g}", "yes" if p["loss_equal_b1"] else "no",
                    p["loss_ulp_vs_b1"], f"{p['loss_exact_sum']:.12g}", p["logits_equal_frac"], 100 * p["accuracy"],
                    p["why"]] for p in points]), *reported]


def notes(rows: int, fmt: str) -> list[str]:
    return [f"{rows} rows in consecutive batches of B (the last shorter); logits in {fmt}, losses in float32.",
            "The loss's ULP distance is between the float32 losses at B and at B=1."]
