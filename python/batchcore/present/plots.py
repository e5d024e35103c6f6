"""Figures of a sweep: speed, bits, classes and memory against the batch size (matplotlib, optional).

Figures are made as ``matplotlib.figure.Figure`` objects, never through ``pyplot``: a user's own figures,
backend and interactive state are left alone, and nothing needs a screen. Each ``draw_*`` function draws
one panel on an axes it is given, so that :func:`overview` (``SweepResult.plot``) and the HTML report
(:mod:`batchcore.report`) compose the same panels.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

from .. import files
from ..errors import ArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Point = dict[str, Any]
FORMATS = ("png", "svg", "pdf")
STYLES: list[dict[str, Any]] = [dict(marker="o", linestyle="-"), dict(marker="s", linestyle="--"),
                                dict(marker="^", linestyle=":"), dict(marker="x", linestyle="-."),
                                dict(marker="D", linestyle="-", mfc="none"), dict(marker="v", linestyle="--")]


def figure(width_in: float, height_in: float, rows: int = 1, cols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` x ``cols`` panels (sizes in inches) and its axes, row by row."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("plots need matplotlib: pip install 'batchcore[report]'") from None
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def by_backend(points: list[Point]) -> dict[str, list[Point]]:
    """Each backend's points in order of batch size, backends in order of first appearance."""
    out: dict[str, list[Point]] = {}
    for p in points:
        out.setdefault(p["backend"], []).append(p)
    return {k: sorted(v, key=lambda p: p["batch_size"]) for k, v in out.items()}


def log_batch_axis(ax: Axes, points: list[Point]) -> None:
    """A log2 axis of batch sizes, ticked at the swept ones (as plain numbers)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log", base=2)
    sizes = sorted({p["batch_size"] for p in points})
    ax.set_xticks(sizes, [str(B) for B in sizes], fontsize="small")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size B")
    ax.grid(True, which="major", alpha=0.3)


def _plain_log(ax: Axes, which: Literal["x", "y"]) -> None:
    """A log axis (``which``: "x" or "y") ticked at 1, 2 and 5 per decade, as plain numbers: the default
    labels every minor tick of a range under a decade (they run into each other) and writes 6x10^0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", axis=which, alpha=0.3)


def log_x_plain(ax: Axes) -> None:
    _plain_log(ax, "x")


def _plain_log_y(ax: Axes) -> None:
    _plain_log(ax, "y")


def legend(ax: Axes) -> None:
    """The legend under the panel, outside the data (inside, it covered error bars and bands); the
    figure's constrained layout makes room for it."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=min(len(labels), 3), frameon=False)


def _lines(ax: Axes, points: list[Point], value: Callable[[Point], float | None],
           band: Callable[[Point], tuple[float | None, float | None]] | None = None) -> bool:
    """One line per backend of ``value`` against B (points where it is None left out), with a shaded
    band between ``band``'s bounds where given. False when no backend had a value."""
    drawn = False
    for label, pts in by_backend(points).items():
        xy = [(p["batch_size"], v) for p in pts if (v := value(p)) is not None]
        if not xy:
            continue
        style = STYLES[len(ax.lines) % len(STYLES)]  # lines that coincide (batch-invariant backends) stay visible
        line, = ax.plot([x for x, _ in xy], [y for _, y in xy], label=label, ms=4, **style)
        drawn = True
        if band is None:
            continue
        bounds = [(p["batch_size"], lo, hi) for p in pts for lo, hi in [band(p)] if lo is not None and hi is not None]
        if bounds:
            ax.fill_between([b[0] for b in bounds], [b[1] for b in bounds], [b[2] for b in bounds],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    return drawn


def nothing(ax: Axes, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, wrap=True, color="0.4")


def draw_latency(ax: Axes, points: list[Point]) -> None:
    """Median time per batch against B, with its 95 % interval as a band (log-log)."""
    _lines(ax, points, lambda p: p.get("time_ms"), lambda p: (p.get("time_ms_ci_low"), p.get("time_ms_ci_high")))
    log_batch_axis(ax, points)
    _plain_log_y(ax)
    ax.set_ylabel("time per batch (ms)")
    ax.set_title("Latency: median, 95 % CI")
    legend(ax)


def _rows_per_s(p: Point, ms: float | None) -> float | None:
    return p["batch_size"] / (ms / 1e3) if ms else None


def draw_throughput(ax: Axes, points: list[Point]) -> None:
    """Rows per second against B; the band is B over the time's interval."""
    _lines(ax, points, lambda p: p.get("samples_per_s"),
           lambda p: (_rows_per_s(p, p.get("time_ms_ci_high")), _rows_per_s(p, p.get("time_ms_ci_low"))))
    log_batch_axis(ax, points)
    _plain_log_y(ax)
    ax.set_ylabel("rows / s")
    ax.set_title("Throughput, 95 % CI")
    legend(ax)


def draw_bits(ax: Axes, points: list[Point]) -> None:
    """The fraction of output elements whose bits equal B=1's, against B."""
    _lines(ax, points, lambda p: p.get("bitwise_equal_frac"))
    log_batch_axis(ax, points)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("fraction of outputs with B=1's bits")
    ax.set_title("Bitwise agreement with B=1")
    legend(ax)


def draw_flips(ax: Axes, points: list[Point]) -> None:
    """Rows whose prediction (argmax) differs from B=1's, against B."""
    if not _lines(ax, points, lambda p: p.get("argmax_changed")):
        nothing(ax, "no predictions: no output of shape (rows, classes)")
    log_batch_axis(ax, points)
    most = max((p.get("argmax_changed") or 0 for p in points), default=0)
    ax.set_ylim(-0.5, max(most, 1) + 0.5)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("rows whose argmax differs from B=1")
    ax.set_title("Prediction flips")
    legend(ax)


def draw_classes(ax: Axes, points: list[Point], classes: dict[str, list[list[int]]]) -> None:
    """A strip per backend: each batch size's cell coloured (and numbered) by its invariance class."""
    import numpy as np

    sizes = sorted({p["batch_size"] for p in points})
    labels = list(classes)
    grid = np.full((len(labels), len(sizes)), np.nan)
    for i, label in enumerate(labels):
        for c, group in enumerate(classes[label]):
            for B in group:
                grid[i, sizes.index(B)] = c
    ax.imshow(np.ma.masked_invalid(grid), cmap="tab10", vmin=0, vmax=9, aspect="auto", interpolation="nearest")
    for i, j in zip(*np.nonzero(np.isfinite(grid)), strict=False):
        ax.text(j, i, str(int(grid[i, j])), ha="center", va="center", fontsize="small", color="white")
    ax.set_xticks(range(len(sizes)), [str(B) for B in sizes], fontsize="small")
    ax.set_yticks(range(len(labels)), [f"{lb} ({len(classes[lb])})" for lb in labels], fontsize="small")
    ax.set_xlabel("batch size B")
    ax.set_title("Invariance classes: equal colour, equal bits")


def draw_memory(ax: Axes, points: list[Point], budget_bytes: int | None = None) -> None:
    """Peak bytes of one batch against B (MiB), with the budget as a dashed line when given."""
    mib = 2.0 ** 20
    if not _lines(ax, points, lambda p: None if p.get("peak_bytes") is None else p["peak_bytes"] / mib):
        nothing(ax, "no memory measured")
    if budget_bytes is not None:
        ax.axhline(budget_bytes / mib, color="red", linestyle="--", label=f"budget {budget_bytes / mib:.4g} MiB")
    log_batch_axis(ax, points)
    _plain_log_y(ax)
    ax.set_ylabel("peak MiB")
    ax.set_title("Memory: peak of one batch")
    legend(ax)


def overview(points: list[Point], classes: dict[str, list[list[int]]], title: str,
             budget_bytes: int | None = None) -> Figure:
    """Every panel of a sweep in one figure: latency, throughput, memory, bits, flips, classes."""
    fig, axes = figure(16, 9, 2, 3)
    draw_latency(axes[0], points)
    draw_throughput(axes[1], points)
    draw_memory(axes[2], points, budget_bytes)
    draw_bits(axes[3], points)
    draw_flips(axes[4], points)
    draw_classes(axes[5], points, classes)
    fig.suptitle(title, fontsize="medium")
    return fig


def image_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure encoded as ``fmt`` (png, svg or pdf)."""
    if fmt not in FORMATS:
        raise ArgumentError(f"a figure is written as {', '.join(FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def image_format(path: str | PathLike[str]) -> str:
    """The format a plot path's suffix names (png, svg, pdf); ArgumentError for any other."""
    suffix = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
    if suffix not in FORMATS:
        raise ArgumentError(f"plot path {str(path)!r} must end in .png, .svg or .pdf")
    return suffix


def save(fig: Figure, path: str | PathLike[str]) -> None:
    """Write the figure atomically, in the format its file name's suffix names (.png, .svg, .pdf)."""
    files.atomic_write(path, image_bytes(fig, image_format(path)))


def machine(env: dict[str, Any]) -> str:
    """The CPU (with its family and model, which tell generations apart where the model name does not)
    and the GPUs of an environment record, in words."""
    ident = env.get("cpu_identity") or {}
    cpu = f"{env.get('cpu_count', '?')}-core {env.get('cpu') or 'unknown CPU'}"
    if ident.get("cpu family"):
        cpu += f" (family {ident['cpu family']} model {ident.get('model', '?')})"
    gpus = [g.get("name", "GPU") for g in env.get("gpus") or [] if isinstance(g, dict)]
    return cpu + (f", {', '.join(gpus)}" if gpus else "")
