"""The figures of each study's section in the report, drawn from the study's recorded ``data`` (so a
study read back from its JSON file draws the same figures as the object that wrote it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import plots

Figures = list[tuple[Any, str]]  # (matplotlib Figure, alt text)


def _accuracy(data: dict[str, Any]) -> Figures:
    points, flips = data.get("points", []), data.get("flips", [])
    fig, (ax, ax2) = plots.figure(11, 3.8, 1, 2)
    for i, (label, pts) in enumerate(plots.by_backend(points).items()):
        xs = [p["batch_size"] * (1 + 0.04 * i) for p in pts]  # side by side, not on top of each other
        ys = [100 * p["accuracy"] for p in pts]
        err = [[y - 100 * p["accuracy_ci"][0] for y, p in zip(ys, pts)], [100 * p["accuracy_ci"][1] - y for y, p in zip(ys, pts)]]
        ax.errorbar(xs, ys, yerr=err, label=label, capsize=3, **plots.STYLES[i % len(plots.STYLES)])
    plots.log_batch_axis(ax, points)
    ax.set_ylabel("accuracy % (95 % Wilson interval)")
    ax.set_title("Accuracy per batch size")
    ax.legend(fontsize="small")
    bounded = [f for f in flips if f.get("rounding_bound") is not None]
    if bounded:
        for verdict, colour in (("within rounding", "tab:green"), ("suspect", "tab:red")):
            sel = [f for f in bounded if f["verdict"] == verdict]
            ax2.scatter([f["rounding_bound"] for f in sel], [f["pair_change"] for f in sel], s=14, color=colour,
                        label=f"{verdict} ({len(sel)})")
        lo = min(min(f["rounding_bound"], f["pair_change"]) for f in bounded) or 1e-12
        hi = max(max(f["rounding_bound"], f["pair_change"]) for f in bounded)
        ax2.plot([lo, hi], [lo, hi], color="0.5", linestyle="--", label="change = bound")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("rounding bound of the pair's difference")
        ax2.set_ylabel("measured change of the difference")
        ax2.legend(fontsize="small")
    else:
        plots.nothing(ax2, "no prediction changed" if not flips else "no rounding bound for this model")
    ax2.set_title("Each flip: measured change against rounding's bound")
    return [(fig, "accuracy per batch size, and each flip's change against the rounding bound")]


def _evaluation(data: dict[str, Any]) -> Figures:
    points = data.get("points", [])
    fig, (ax,) = plots.figure(6.5, 3.8)
    for i, (label, pts) in enumerate(plots.by_backend(points).items()):
        base = pts[0]["loss"]
        style = plots.STYLES[i % len(plots.STYLES)]
        ax.plot([p["batch_size"] for p in pts], [(p["loss"] - base) / base for p in pts], label=f"{label}: evaluation loop",
                **style)
        ax.plot([p["batch_size"] for p in pts], [(p["loss_exact_sum"] - base) / base for p in pts],
                label=f"{label}: exact sum", color=ax.lines[-1].get_color(), alpha=0.5, marker="x", linestyle=":")
    plots.log_batch_axis(ax, points)
    ax.set_ylabel("loss relative to B=1's loop loss")
    ax.set_title("Loss per evaluation batch size")
    ax.legend(fontsize="small")
    return [(fig, "loss against the evaluation batch size, as a loop reports it and summed exactly")]


DRAW: dict[str, Callable[[dict[str, Any]], Figures]] = {"accuracy": _accuracy, "evaluation": _evaluation}


def figures_of(study: dict[str, Any]) -> Figures:
    """The figures of a study record (``Study.to_dict()`` or its JSON read back); none for an unknown study."""
    draw = DRAW.get(study.get("study", ""))
    return draw(study.get("data", {})) if draw else []
