"""Study 1: does a larger batch reduce per-sample accuracy?

The folklore: "larger batches may slightly reduce per-sample accuracy". The measurement: the same
held-out rows run in consecutive batches of B, per backend; per B, every row whose prediction (argmax)
differs from B=1's, explained as the sweep's points explain it (:mod:`batchcore.explain.flips`: its B=1
margin, how far its logits moved, how far rounding alone could have moved them, :mod:`batchcore.explain.bound`;
"within rounding", "suspect" or "no bound").
Accuracy per B comes with its 95 % Wilson interval, so a change inside the noise of a finite test set is
not called a change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import Backend
from ..explain.bound import UNIT_ROUNDOFF, forward_error_bound
from ..explain.flips import flip_records
from ..info import info
from ..present.progress import Steps
from ..results import numerics
from ..run.sweep import check_batch_sizes, read_model, resolve_data
from .outputs import check_labels, logits_runner
from .record import Study, Table

QUESTION = "Does a larger batch change per-sample predictions and accuracy?"


def _bound(module: Any, data: Any, fmt: str) -> tuple[np.ndarray | None, str]:
    """The rounding bound of every output (:mod:`batchcore.explain.bound`) of the model batchcore reads from
    ``module``, or None and why not."""
    model = read_model(module, data)
    if isinstance(model, str):
        return None, model
    if fmt not in UNIT_ROUNDOFF:
        return None, f"outputs in {fmt}"
    return forward_error_bound(model, resolve_data(model, data, None, 0, [1]), fmt)


def accuracy(module: Any, data: Any, labels: Any, batch_sizes: Any = (1, 2, 8, 64, 256),
             backends: list[Backend] | None = None, progress: bool | None = None) -> Study:
    """Study 1 on ``module`` (a torch module or callable, or a batchcore model) over ``data`` (rows first)
    with integer ``labels``: per backend (default ``[bc.torch()]``) and batch size, accuracy with its 95 %
    Wilson interval, the rows whose prediction differs from B=1's and whether rounding explains each.
    ``study.data["flips"]`` holds every flip; ``study.data["points"]`` every (backend, B)."""
    from ..backends import torch as torch_backend

    sizes = check_batch_sizes(batch_sizes)
    sizes = [1] + [B for B in sizes if B != 1]
    backends, run, rows, fmt = logits_runner(module, data, [torch_backend()] if backends is None else backends, sizes)
    labels = check_labels(labels, rows)
    bound, how = _bound(module, data, fmt)
    points, flips = [], []
    with Steps("accuracy study", len(backends) * len(sizes), progress) as steps:
        for backend in backends:
            y_b1 = None
            for B in sizes:
                steps.now(f"{backend.label} B={B}")
                y = run(backend, B)
                y_b1 = y if y_b1 is None else y_b1
                correct = int((y.argmax(1) == labels).sum())
                low, high = numerics.accuracy_interval(correct, rows)
                found = flip_records(y, y_b1, labels, bound)
                flips += [{"backend": backend.label, "batch_size": B, **f} for f in found]
                points.append({"backend": backend.label, "batch_size": B, "correct": correct, "rows": rows,
                               "accuracy": correct / rows, "accuracy_ci": [low, high], "flips": len(found),
                               "within_rounding": sum(f["verdict"] == "within rounding" for f in found),
                               "suspect": sum(f["verdict"] == "suspect" for f in found),
                               "bitwise_equal_frac": numerics.bitwise_equal_frac(y, y_b1),
                               "max_ulp_vs_b1": numerics.max_ulp(y, y_b1, fmt)})
                steps.done()
    return Study("accuracy", QUESTION, verdict(points), tables(points, flips), notes(how, rows, fmt),
                 {"points": points, "flips": flips, "bound": how, "format": fmt}, info())


def verdict(points: list[dict[str, Any]]) -> str:
    """One sentence for all backends: how many predictions changed, whether rounding explains them, and
    whether any accuracy left B=1's interval."""
    flips = sum(p["flips"] for p in points)
    suspect = sum(p["suspect"] for p in points)
    unexplained = sum(p["flips"] - p["within_rounding"] - p["suspect"] for p in points)
    b1 = {p["backend"]: p for p in points if p["batch_size"] == 1}
    outside = [p for p in points if not b1[p["backend"]]["accuracy_ci"][0] <= p["accuracy"] <= b1[p["backend"]]["accuracy_ci"][1]]
    lo = min(p["accuracy"] for p in points)
    hi = max(p["accuracy"] for p in points)
    if flips == 0:
        head = "No prediction changed at any batch size"
    elif suspect:
        head = (f"{suspect} of {flips} prediction changes are larger than rounding can explain: the output depends "
                "on the batch (a statistic over it, padding, a batch-dependent path), not only on float order")
    elif unexplained:
        head = f"{flips} predictions changed between batch sizes (no rounding bound for this model's layers)"
    else:
        head = (f"{flips} predictions changed between batch sizes, every one within rounding (rows on a decision "
                "boundary at float resolution)")
    tail = ("every accuracy lies inside B=1's 95 % interval: the batch size does not change accuracy beyond noise"
            if not outside else f"{len(outside)} (backend, B) accuracies leave B=1's 95 % interval")
    span = f"{100 * lo:.2f} % at every B" if lo == hi else f"{100 * lo:.2f}-{100 * hi:.2f} %"
    return f"{head}; accuracy {span}, {tail}."


def tables(points: list[dict[str, Any]], flips: list[dict[str, Any]], shown: int = 20) -> list[Table]:
    out = [Table("Accuracy per batch size (95 % Wilson interval) and prediction flips against B=1",
                 ["backend", "B", "accuracy %", "95 % CI %", "=B1 bits", "maxULP B1", "flips", "within rounding", "suspect"],
                 [[p["backend"], p["batch_size"], 100 * p["accuracy"],
                   f"[{100 * p['accuracy_ci'][0]:.2f}, {100 * p['accuracy_ci'][1]:.2f}]", p["bitwise_equal_frac"],
                   p["max_ulp_vs_b1"], p["flips"], p["within_rounding"], p["suspect"]] for p in points])]
    if flips:
        out.append(Table(f"Flips ({min(shown, len(flips))} of {len(flips)}): margin at B=1 against the measured change "
                         "and rounding's bound",
                         ["backend", "B", "row", "label", "pred B=1", "pred B", "margin B=1", "max |Δlogit|",
                          "Δ(pair)", "bound", "verdict"],
                         [[f["backend"], f["batch_size"], f["row"], f["label"], f["pred_b1"], f["pred"], f["margin_b1"],
                           f["max_abs_delta"], f["pair_change"], f["rounding_bound"], f["verdict"]] for f in flips[:shown]]))
    return out


def notes(how: str, rows: int, fmt: str) -> list[str]:
    return [f"{rows} rows in consecutive batches of B (the last shorter), outputs in {fmt}; flips are counted "
            "against the same backend at B=1.",
            f"Rounding bound: {how}. A flip is 'within rounding' when the change of (logit of B=1's class - logit "
            "of B's class) is at most 2 (E_i + E_j), the most two evaluations in any orders can differ by."]
