"""Study 4: how fast is inference at each batch size, where does a larger batch stop paying, and how large
a batch fits?

The folklore: "larger batches are faster; find the best one empirically, and catch the out-of-memory
error" (``try: model(x) except RuntimeError: ...``). The measurement: a sweep (latency with its 95 %
interval, throughput, GFLOP/s against the measured fma peak and the roofline), the knee of the throughput
curve with the range the intervals leave it in, the best batch under a p99 latency budget, and the largest
batch that fits a memory budget, found by :func:`batchcore.largest_batch`: every probe a real forward pass
whose out-of-memory error is caught with everything freed (the native core's tracking allocator enforces
the budget on the CPU; on a GPU the device's own memory is the limit).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..backends import Backend
from ..errors import ArgumentError, OutOfMemoryError
from ..measure.capacity import largest_batch
from ..measure.timing import Timer
from ..model.chain import Model
from ..model.graph import GraphModel
from ..results import decisions
from ..run.sweep import resolve_model, sweep
from .record import Study, Table

QUESTION = "How fast is inference at each batch size, where does a larger batch stop paying, and what is the largest that fits?"


def performance(module: Any, data: Any, batch_sizes: Any = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
                backends: list[Backend] | None = None, budget_bytes: int | None = 2**30, latency_ms: float | None = None,
                timer: Timer | None = None, rounds: int = 3, progress: bool | None = None) -> Study:
    """Study 4 for ``module`` on ``data`` (rows first; at least the largest batch size of them): a sweep
    through ``backends`` (default torch and native seq), per backend the knee and, with ``latency_ms``, the
    best batch whose p99 is within it; for each backend that bounds its memory (``Backend.bounds_memory``:
    native, and torch or cupy on a GPU) the largest batch within ``budget_bytes``
    (bytes; None on a GPU: its real memory). ``study.data`` holds the sweep's points, env and config."""
    from ..backends import native, torch

    backends = [torch(), native(order="seq")] if backends is None else backends
    # read once, for the sweep and the largest-batch search alike (torch.fx traces the module each time)
    searched = [b for b in backends if b.bounds_memory(budget_bytes)]  # those largest_batch can search
    readable = _readable(module, data, searched) if searched else None
    res = sweep(module if readable is None else readable, batch_sizes=batch_sizes, backends=backends, data=data,
                timer=timer, rounds=rounds, progress=progress)
    labels = list(dict.fromkeys(p["backend"] for p in res.points))
    knees = {b: dataclasses.asdict(decisions.knee(res.points, backend=b)) for b in labels}
    best = {b: dataclasses.asdict(decisions.best_batch(res.points, latency_ms, "p99", b)) for b in labels} if latency_ms else {}
    fits = {}
    model = res.config.get("model")
    for b in searched:
        if readable is None:
            continue
        try:
            found = largest_batch(readable, b, budget_bytes=budget_bytes, progress=progress)
            fits[b.label] = dataclasses.asdict(found)
        except OutOfMemoryError as e:
            fits[b.label] = {"batch_size": 0, "reason": str(e), "budget_bytes": budget_bytes}
    d = {"points": res.points, "env": res.env, "config": res.config, "knee": knees, "best": best, "largest": fits,
         "latency_ms": latency_ms, "budget_bytes": budget_bytes, "model": model}
    return Study("performance", QUESTION, verdict(d), tables(d), notes(d), d, res.env)


def _readable(module: Any, data: Any, backends: list[Backend]) -> Model | GraphModel | None:
    """The model ``backends`` run for ``module`` when batchcore reads it (None when it does not)."""
    if isinstance(module, (Model, GraphModel)):
        return module
    try:
        found = resolve_model(module, backends, data)
    except ArgumentError:
        return None
    return found if isinstance(found, (Model, GraphModel)) else None


def verdict(d: dict[str, Any]) -> str:
    parts = []
    for label, k in d["knee"].items():
        pts = [p for p in d["points"] if p["backend"] == label]
        top = max(pts, key=lambda p: p["samples_per_s"] or 0)
        one = pts[0]
        gain = (top["samples_per_s"] or 0) / (one["samples_per_s"] or 1)
        if k["batch_size"] is None:
            knee = "no knee in the swept range"
        else:
            where = "" if k["sure"] else f" (somewhere in {k['between'][0]}..{k['between'][1] or 'beyond'})"
            knee = f"the knee at B={k['batch_size']}{where}"
        text = f"{label}: {gain:.1f}x B={one['batch_size']}'s throughput at B={top['batch_size']}, {knee}"
        if label in d["best"] and d["best"][label]["batch_size"] is not None:
            text += f"; best under {d['latency_ms']:g} ms p99: B={d['best'][label]['batch_size']}"
        if label in d["largest"]:
            text += f"; largest batch within {d['budget_bytes'] / 2**20:.4g} MiB: {d['largest'][label]['batch_size']}"
        parts.append(text)
    return "; ".join(parts) + "."


def tables(d: dict[str, Any]) -> list[Table]:
    rows = [[p["backend"], p["batch_size"], p["time_ms"], f"[{p['time_ms_ci_low'] or 0:.4g}, {p['time_ms_ci_high'] or 0:.4g}]",
             p["time_ms_p99"], p["samples_per_s"], p["gflops"], None if p["peak_frac"] is None else 100 * p["peak_frac"],
             None if p["roofline_frac"] is None else 100 * p["roofline_frac"],
             None if p["peak_bytes"] is None else p["peak_bytes"] / 2**20] for p in d["points"]]
    out = [Table("Latency (ms, median and its 95 % CI, p99), throughput (rows/s), GFLOP/s against the fma peak and the "
                 "roofline, peak memory (MiB)",
                 ["backend", "B", "median ms", "95 % CI", "p99 ms", "rows/s", "GFLOP/s", "%peak", "%roof", "peak MiB"], rows)]
    out.append(Table("Decisions", ["backend", "knee", "knee range", "best under the p99 budget", "largest batch that fits"],
                     [[b, k["batch_size"], "beyond the swept sizes" if k["batch_size"] is None
                       else f"{k['between'][0]}..{k['between'][1] or 'beyond'}",
                       d["best"].get(b, {}).get("batch_size"), d["largest"].get(b, {}).get("batch_size")]
                      for b, k in d["knee"].items()]))
    return out


def notes(d: dict[str, Any]) -> list[str]:
    out = ["The knee: the first B from which the next measured size buys less than 5 % more throughput."]
    for label, found in d["largest"].items():
        if "steps" in found:
            failed = sum(1 for _, ok, _ in found["steps"] if not ok)
            out.append(f"{label}: {len(found['steps'])} probes, {failed} ended in a caught out-of-memory error, "
                       f"everything freed; peak {found['peak_bytes']} bytes at B={found['batch_size']}.")
    return out
