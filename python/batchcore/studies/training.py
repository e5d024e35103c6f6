"""Study 3: the training batch size, gradient accumulation, and BatchNorm.

The folklore: "a smaller training batch generalises better", "gradient accumulation is the same as a
bigger batch", "BatchNorm makes results depend on the batch". The measurements, all in plain PyTorch:

1. **Batch size against seed noise**: the same network trained at each batch size from several seeds
   (same epochs and learning rate); test accuracy per B as the seeds' mean with a 95 % t interval, and
   Welch's t-test between the smallest and the largest B, so that a batch effect is only called one when
   it stands out of the seeds' own spread.
2. **Gradient accumulation**: the gradient of one step over R rows against ``k`` accumulated steps of R/k
   rows (each loss divided by k), on the same weights and rows: the fraction of gradient elements with
   equal bits, the largest ULP distance, and each one's distance to the float64 gradient. With k a power
   of two the scalings (1/R against 1/(R/k) times 1/k) are exact, so any difference is the order of the
   reduction over the batch: one GEMM summing R rows against k sums of R/k rows added in float32.
3. **BatchNorm**: a network with BatchNorm run in train mode (statistics of the batch; running statistics
   left untouched) and in eval mode (running statistics) over the test set in batches of B: accuracy per B
   and the rows whose prediction differs from the full-batch one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..frontends import frontend_of
from ..info import info
from ..present.progress import Steps
from ..results import numerics
from .record import Study, Table

QUESTION = "Does the training batch size change accuracy beyond seed noise; is accumulation a bigger batch; and BatchNorm?"


def batch_effect(runs: dict[int, list[float]]) -> dict[str, Any]:
    """Per B the seeds' mean accuracy, standard deviation and 95 % t interval; Welch's t-test between the
    smallest and the largest B (two-sided p)."""
    from scipy import stats

    per_b: dict[int, dict[str, Any]] = {}
    for B, accs in runs.items():
        a = np.asarray(accs)
        half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
        per_b[B] = {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else float("nan"),
                    "ci": [float(a.mean() - half), float(a.mean() + half)], "accuracies": [float(v) for v in a]}
    lo, hi = min(runs), max(runs)
    test = stats.ttest_ind(runs[lo], runs[hi], equal_var=False) if len(runs[lo]) > 1 and len(runs[hi]) > 1 else None
    return {"per_batch": per_b, "compared": [lo, hi], "difference": per_b[lo]["mean"] - per_b[hi]["mean"],
            "p_value": None if test is None or np.isnan(test.pvalue) else float(test.pvalue)}


def batchnorm_modes(net: Any, x: Any, y: Any, sizes: list[int],
                    outputs: Callable[..., dict[int, np.ndarray]]) -> list[dict[str, Any]]:
    """Accuracy and prediction changes per B in train mode (batch statistics) and in eval mode, against each
    mode's full-batch predictions; ``outputs(net, x, mode, sizes)``: the framework's logits per B."""
    rows = []
    labels = np.asarray(y)
    for mode in ("eval", "train"):
        outs = outputs(net, x, mode, sizes)
        full = outs[max(sizes)]
        for B in sizes:
            rows.append({"mode": mode, "batch_size": B, "accuracy": float((outs[B].argmax(1) == labels).mean()),
                         "flips_vs_full": int((outs[B].argmax(1) != full.argmax(1)).sum()),
                         "bitwise_equal_frac": numerics.bitwise_equal_frac(outs[B], full),
                         "max_abs_diff": float(np.max(np.abs(outs[B].astype(np.float64) - full)))})
    return rows


def _framework(net: Any) -> Any:
    """The module of the three measurements for ``net``'s framework (:mod:`.training_torch` or
    :mod:`.training_keras`), each imported only when used."""
    if frontend_of(net).name == "keras":
        from . import training_keras

        return training_keras
    from . import training_torch

    return training_torch


def training(make_net: Callable[[int], Any], make_bn_net: Callable[[int], Any], train: Callable[..., float],
             x_train: Any, y_train: Any, x_test: Any, y_test: Any, batch_sizes: Any = (32, 128, 512),
             seeds: Any = (0, 1, 2), epochs: int = 10, accumulate: tuple[int, int] = (4, 32),
             bn_sizes: Any = (2, 8, 64, 450), progress: bool | None = None) -> Study:
    """Study 3. ``make_net(seed)`` / ``make_bn_net(seed)``: a fresh network (the second with BatchNorm);
    ``train(net, x, y, epochs=, batch_size=, seed=)`` trains it in place. ``accumulate=(k, r)``: k steps of r
    rows against one of k r rows. ``bn_sizes``: the evaluation batch sizes of the BatchNorm part."""
    sizes, seeds = sorted(set(batch_sizes)), list(seeds)
    runs: dict[int, list[float]] = {B: [] for B in sizes}
    ops = _framework(make_net(0))
    with Steps("training study", len(sizes) * len(seeds) + 2, progress) as steps:
        for B in sizes:
            for seed in seeds:
                steps.now(f"training at B={B}, seed {seed}")
                net = make_net(seed)
                train(net, x_train, y_train, epochs=epochs, batch_size=B, seed=seed)
                runs[B].append(ops.test_accuracy(net, x_test, y_test))
                steps.done()
        k, r = accumulate
        steps.now(f"gradients: 1 x {k * r} against {k} x {r}")
        acc = ops.accumulation(make_net(0), x_train[:k * r], y_train[:k * r], k)
        steps.done()
        steps.now("BatchNorm network")
        bn = make_bn_net(0)
        train(bn, x_train, y_train, epochs=epochs, batch_size=64, seed=0)
        modes = batchnorm_modes(bn, x_test, y_test, sorted({min(b, len(x_test)) for b in bn_sizes}), ops.batchnorm_outputs)
        steps.done()
    d = {"batch_effect": batch_effect(runs), "accumulation": acc, "batchnorm": modes, "epochs": epochs,
         "accumulation_note": ops.NOTE}
    return Study("training", QUESTION, verdict(d), tables(d), notes(d), d, info())


def verdict(d: dict[str, Any]) -> str:
    be, acc = d["batch_effect"], d["accumulation"]
    lo, hi = be["compared"]
    p = be["p_value"]
    first = (f"Training at B={lo} against B={hi} changed test accuracy by {100 * be['difference']:+.2f} points, "
             + ("beyond the seeds' noise" if p is not None and p < 0.05 else "within the seeds' noise")
             + (f" (Welch p = {p:.2g})" if p is not None else ""))
    worst = max(acc["one_step_rel_err_vs_f64"], acc["accumulated_rel_err_vs_f64"])
    second = (f"{acc['steps']} accumulated steps of {acc['rows'] // acc['steps']} rows gave "
              + ("the same gradient bits as" if acc["equal_frac"] == 1 else
                 f"other gradient bits than ({100 * (1 - acc['equal_frac']):.0f} % of elements, up to {acc['max_ulp']} ULP)")
              + f" one step of {acc['rows']}; both are within a relative {worst:.1e} of the float64 gradient: the "
              "reduction's order, not an error")
    train = [r for r in d["batchnorm"] if r["mode"] == "train"]
    evals = [r for r in d["batchnorm"] if r["mode"] == "eval"]
    lo, hi = min(r["accuracy"] for r in train), max(r["accuracy"] for r in train)
    span = f"left accuracy at {100 * lo:.2f} %" if lo == hi else f"moved accuracy between {100 * lo:.2f} and {100 * hi:.2f} %"
    third = (f"BatchNorm in train mode {span} across evaluation batch sizes and flipped up to "
             f"{max(r['flips_vs_full'] for r in train)} predictions against the full batch; in eval mode "
             f"{max(r['flips_vs_full'] for r in evals)} flipped")
    return f"{first}. {second}. {third}."


def tables(d: dict[str, Any]) -> list[Table]:
    be, acc = d["batch_effect"], d["accumulation"]
    return [
        Table(f"Test accuracy per training batch size ({d['epochs']} epochs, same learning rate; mean of seeds, 95 % t interval)",
              ["train B", "seeds", "mean %", "std (points)", "95 % CI %"],
              [[B, len(v["accuracies"]), 100 * v["mean"], 100 * v["std"], f"[{100 * v['ci'][0]:.2f}, {100 * v['ci'][1]:.2f}]"]
               for B, v in be["per_batch"].items()]),
        Table("Gradient accumulation against one step",
              ["rows", "steps", "elements", "bits equal", "max ULP apart", "one step: rel. error vs f64",
               "accumulated: rel. error vs f64"],
              [[acc["rows"], acc["steps"], acc["elements"], acc["equal_frac"], acc["max_ulp"], acc["one_step_rel_err_vs_f64"],
                acc["accumulated_rel_err_vs_f64"]]]),
        Table("BatchNorm: evaluation in batches of B, train mode (batch statistics) and eval mode (running statistics)",
              ["mode", "B", "accuracy %", "flips vs full batch", "bits = full batch", "max |Δlogit|"],
              [[r["mode"], r["batch_size"], 100 * r["accuracy"], r["flips_vs_full"], r["bitwise_equal_frac"], r["max_abs_diff"]]
               for r in d["batchnorm"]]),
    ]


def notes(d: dict[str, Any]) -> list[str]:
    return ["Every network is trained with Adam on cross-entropy over shuffled mini-batches, the shuffle drawn from the seed; "
            "the same epochs and learning rate at every B, so a larger B takes proportionally fewer optimizer steps.",
            d.get("accumulation_note", "")]

