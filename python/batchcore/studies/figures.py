"""The figures of each study's section in the report, drawn from the study's recorded ``data`` (so a
study read back from its JSON file draws the same figures as the object that wrote it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..present import plots

Figures = list[tuple[Any, str]]  # (matplotlib Figure, alt text)


def _accuracy(data: dict[str, Any]) -> Figures:
    points, flips = data.get("points", []), data.get("flips", [])
    bounded = [f for f in flips if f.get("rounding_bound") is not None]
    # the flips against the rounding bound get a panel only when there are any: an empty one says
    # nothing a sentence does not (the section's verdict says whether a prediction changed)
    fig, axes = plots.figure(11 if bounded else 5.6, 3.8, 1, 2 if bounded else 1)
    ax = axes[0]
    for i, (label, pts) in enumerate(plots.by_backend(points).items()):
        xs = [p["batch_size"] * (1 + 0.04 * i) for p in pts]  # side by side, not on top of each other
        ys = [100 * p["accuracy"] for p in pts]
        err = [[y - 100 * p["accuracy_ci"][0] for y, p in zip(ys, pts, strict=True)],
               [100 * p["accuracy_ci"][1] - y for y, p in zip(ys, pts, strict=True)]]
        ax.errorbar(xs, ys, yerr=err, label=label, capsize=3, **plots.STYLES[i % len(plots.STYLES)])
    plots.log_batch_axis(ax, points)
    ax.set_ylabel("accuracy % (95 % Wilson interval)")
    ax.set_title("Accuracy per batch size")
    plots.legend(ax)
    if not bounded:
        why = "no prediction changed" if not flips else "the model has no rounding bound"
        return [(fig, f"accuracy per batch size ({why}: no flip to hold against rounding's bound)")]
    ax2 = axes[1]
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
    plots.legend(ax2)
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
    plots.legend(ax)
    return [(fig, "loss against the evaluation batch size, as a loop reports it and summed exactly")]


def _deployment(data: dict[str, Any]) -> Figures:
    settings, checks = data.get("settings", []), data.get("validation", [])
    fig, axes = plots.figure(16, 4, 1, 3)
    delays = sorted({s["max_delay_ms"] for s in settings})
    for i, d in enumerate(delays):
        rows = [s for s in settings if s["max_delay_ms"] == d]
        style = plots.STYLES[i % len(plots.STYLES)]
        axes[0].plot([s["max_batch"] for s in rows], [s["p99_ms"] for s in rows], label=f"max delay {d:g} ms", **style)
        axes[1].plot([s["max_batch"] for s in rows], [s["max_rate_within_budget"] for s in rows],
                     label=f"max delay {d:g} ms", **style)
    axes[0].axhline(data.get("p99_budget_ms", 0), color="red", linestyle="--", label="p99 budget")
    for ax, title, ylabel in ((axes[0], f"p99 latency at {data.get('rate_per_s', 0):.4g} requests/s", "p99 ms"),
                              (axes[1], "Highest rate with p99 within the budget", "requests / s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({s["max_batch"] for s in settings}), [str(b) for b in sorted({s["max_batch"] for s in settings})])
        ax.set_xlabel("max batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        plots.legend(ax)
    axes[0].set_yscale("log")
    percentiles = [q + 1 for q in range(99)]
    for i, v in enumerate(checks):
        style = plots.STYLES[i % len(plots.STYLES)]
        line, = axes[2].plot(v["simulated"]["quantiles_ms"], percentiles, linestyle="-",
                             label=f"forecast, max batch {v['max_batch']}, {v['max_delay_ms']:g} ms")
        if "replayed" in v:
            axes[2].plot(v["replayed"]["quantiles_ms"], percentiles, linestyle=":", color=line.get_color(),
                         label="replayed with the run's service times")
        axes[2].plot(v["real"]["quantiles_ms"], percentiles, linestyle="--", marker=style["marker"],
                     markevery=10, color=line.get_color(), label="real queue, same setting")
    if checks:
        plots.log_x_plain(axes[2])
        axes[2].set_xlabel("latency ms")
        axes[2].set_ylabel("percentile")
        plots.legend(axes[2])
    else:
        plots.nothing(axes[2], "no real run to compare with")
    axes[2].set_title("Simulation against the real queue")
    return [(fig, "p99 latency and the highest rate within the budget per setting; simulated and real latency")]


def _roofline(ax: Any, points: list[dict[str, Any]], probes: dict[str, Any]) -> None:
    """GFLOP/s against arithmetic intensity per backend, under each probed roof min(peak, bandwidth x I)."""
    import numpy as np

    drawn = False
    for i, (label, pts) in enumerate(plots.by_backend(points).items()):
        xy = [(p["intensity"], p["gflops"]) for p in pts if p.get("intensity") and p.get("gflops")]
        if not xy:
            continue
        line, = ax.plot([x for x, _ in xy], [y for _, y in xy], label=label, linestyle="none",
                        marker=plots.STYLES[i % len(plots.STYLES)]["marker"])
        roof = probes.get(label) or {}
        if roof.get("peak_gflops") and roof.get("bandwidth_gbs"):
            xs = np.geomspace(min(x for x, _ in xy) / 2, max(x for x, _ in xy) * 2, 100)
            ax.plot(xs, np.minimum(roof["peak_gflops"], roof["bandwidth_gbs"] * xs), color=line.get_color(), alpha=0.5)
        drawn = True
    if not drawn:
        plots.nothing(ax, "no FLOP counts (a module batchcore does not read)")
        return
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (flop / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("Roofline: points under min(peak, bandwidth x intensity)")
    plots.legend(ax)


def _performance(data: dict[str, Any]) -> Figures:
    points = data.get("points", [])
    fig, axes = plots.figure(16, 4, 1, 3)
    plots.draw_latency(axes[0], points)
    plots.draw_throughput(axes[1], points)
    _roofline(axes[2], points, data.get("env", {}).get("probes", {}))
    fig2, (mem,) = plots.figure(6, 3.6)
    plots.draw_memory(mem, points, data.get("budget_bytes"))
    return [(fig, "latency, throughput and roofline against the batch size"), (fig2, "peak memory against B")]


def _training(data: dict[str, Any]) -> Figures:
    per_b = data.get("batch_effect", {}).get("per_batch", {})
    fig, (ax, ax2) = plots.figure(11, 3.8, 1, 2)
    sizes = sorted(per_b, key=int)
    for B in sizes:
        v = per_b[B]
        ax.scatter([int(B)] * len(v["accuracies"]), [100 * a for a in v["accuracies"]], s=12, color="0.6")
        ax.errorbar([int(B)], [100 * v["mean"]], yerr=[[100 * (v["mean"] - v["ci"][0])], [100 * (v["ci"][1] - v["mean"])]],
                    marker="o", capsize=4, color="tab:blue")
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(B) for B in sizes], [str(B) for B in sizes])
    ax.set_xlabel("training batch size")
    ax.set_ylabel("test accuracy % (seeds, mean, 95 % CI)")
    ax.set_title("Training batch size against seed noise")
    for i, mode in enumerate(("train", "eval")):
        rows = [r for r in data.get("batchnorm", []) if r["mode"] == mode]
        ax2.plot([r["batch_size"] for r in rows], [100 * r["accuracy"] for r in rows], label=f"BatchNorm, {mode} mode",
                 **plots.STYLES[i])
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("evaluation batch size")
    ax2.set_ylabel("test accuracy %")
    ax2.set_title("BatchNorm: batch statistics against running ones")
    plots.legend(ax2)
    return [(fig, "test accuracy per training batch size over seeds; BatchNorm train and eval mode per B")]


def _orders(data: dict[str, Any]) -> Figures:
    cells, conds = data.get("cells", []), data.get("conds", [])
    if not cells:
        return []
    fig, axes = plots.figure(5.4 * len(conds), 4.2, 1, len(conds))
    names = list(dict.fromkeys(c["order"] for c in cells))
    for ax, cond in zip(axes, conds, strict=False):
        here = [c for c in cells if c["cond"] == cond]
        for i, name in enumerate(names):
            mine = sorted((c for c in here if c["order"] == name), key=lambda c: c["K"])
            style = plots.STYLES[i % len(plots.STYLES)]
            line, = ax.plot([c["K"] for c in mine], [max(c["max_rel_error_u"], 1e-3) for c in mine], label=name,
                            marker=style["marker"], linestyle="-")
            ax.plot([c["K"] for c in mine], [c["bound_u"] for c in mine], color=line.get_color(), linestyle="--",
                    alpha=0.6)
        Ks = sorted({c["K"] for c in here})
        estimate = {K: next(c["probabilistic_u"] for c in here if c["K"] == K) for K in Ks}
        ax.plot(Ks, [estimate[K] for K in Ks], color="0.3", linestyle=":", linewidth=2, label="sqrt(K) cond u")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(Ks, [str(K) for K in Ks])
        ax.set_xlabel("K (terms)")
        ax.set_ylabel("largest relative error, in u = 2^-24")
        ax.set_title(f"condition ~{cond:g}: measured (solid), bound (dashed)")
    plots.legend(axes[0])
    return [(fig, "each order's largest error against K beside its a-priori bound, per condition number")]


DRAW: dict[str, Callable[[dict[str, Any]], Figures]] = {"accuracy": _accuracy, "evaluation": _evaluation,
                                                        "deployment": _deployment, "performance": _performance,
                                                        "training": _training, "orders": _orders}


def figures_of(study: dict[str, Any]) -> Figures:
    """The figures of a study record (``Study.to_dict()`` or its JSON read back); none for an unknown study."""
    draw = DRAW.get(study.get("study", ""))
    return draw(study.get("data", {})) if draw else []
