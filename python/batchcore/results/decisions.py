"""Decisions from measured points, each with how sure it is: the best batch under a latency budget, the
knee of the throughput curve, and SAME / FASTER / SLOWER / UNSURE between two runs. No winner is
declared inside the noise: every rule compares 95 % confidence intervals, not point estimates alone.

Throughput is rows per second, B / median time; its interval is B over the median's interval. A
quantile's interval (p90, p99) is the order-statistic one from the point's raw samples (exact for any
distribution), as the timer's median interval is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import files
from ..errors import ArgumentError
from ..measure.timing import quantile_ci


class HasPoints(Protocol):
    """Anything with measured points, such as a :class:`~batchcore.results.sweep_result.SweepResult`."""

    points: list[dict[str, Any]]


SweepLike = str | os.PathLike[str] | HasPoints  # a sweep, or the path of its result file

METRICS = {"median": "time_ms", "mean": "time_ms_mean", "p90": "time_ms_p90", "p99": "time_ms_p99"}
QUANTILES = {"p90": 0.90, "p99": 0.99}


def _interval(p: dict, metric: str, confidence: float = 0.95) -> tuple[float, float, float]:
    """(value, low, high) of a point's latency metric in ms."""
    value = p[METRICS[metric]]
    if metric == "median":
        low, high = p.get("time_ms_ci_low"), p.get("time_ms_ci_high")
        return value, (-math.inf if low is None else low), (math.inf if high is None else high)
    if metric in QUANTILES:
        low, high = quantile_ci(p.get("timing", {}).get("samples_ms", []), QUANTILES[metric], confidence)
        return value, low, high
    return value, value, value  # the mean: no interval here, taken at face value


def _throughput(p: dict) -> tuple[float, float, float]:
    """(rows/s, low, high) from the median and its interval."""
    B, med, lo, hi = p["batch_size"], p["time_ms"], p.get("time_ms_ci_low"), p.get("time_ms_ci_high")
    rate = B / (med / 1e3)
    low = B / (hi / 1e3) if hi else 0.0
    high = B / (lo / 1e3) if lo and lo > 0 else math.inf
    return rate, low, high


def _one_backend(points: list[dict], backend: str | None) -> list[dict]:
    labels = list(dict.fromkeys(p["backend"] for p in points))
    if backend is None:
        if len(labels) != 1:
            raise ArgumentError(f"the result holds several backends ({', '.join(labels)}); pass backend=")
        backend = labels[0]
    chosen = sorted((p for p in points if p["backend"] == backend and p.get("time_ms")), key=lambda p: p["batch_size"])
    if not chosen:
        raise ArgumentError(f"no timed points for backend {backend!r}; known: {', '.join(labels)}")
    return chosen


@dataclass
class BestBatch:
    """``batch_size``: the highest-throughput B whose latency metric meets the budget (None if none does);
    ``sure``: its latency interval is within the budget and its throughput interval lies above every
    other eligible B's; ``tied``: eligible B whose throughput cannot be told apart from the winner's;
    ``budget_unsure``: B whose latency interval straddles the budget."""

    batch_size: int | None
    rows_per_s: float | None
    latency_ms: float | None
    metric: str
    budget_ms: float
    sure: bool
    tied: list = field(default_factory=list)
    budget_unsure: list = field(default_factory=list)
    reason: str = ""


def best_batch(points: list[dict], latency_ms: float, metric: str = "p99", backend: str | None = None) -> BestBatch:
    if metric not in METRICS:
        raise ArgumentError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not (isinstance(latency_ms, (int, float)) and latency_ms > 0 and math.isfinite(latency_ms)):
        raise ArgumentError(f"latency_ms must be a positive number, got {latency_ms!r}")
    pts = _one_backend(points, backend)
    lat = {p["batch_size"]: _interval(p, metric) for p in pts}
    thr = {p["batch_size"]: _throughput(p) for p in pts}
    eligible = [B for B in lat if lat[B][0] <= latency_ms]
    straddle = [B for B in lat if lat[B][1] <= latency_ms < lat[B][2]]
    if not eligible:
        return BestBatch(None, None, None, metric, latency_ms, sure=not straddle, budget_unsure=straddle,
                         reason=f"no batch size has a {metric} within {latency_ms} ms")
    win = max(eligible, key=lambda B: thr[B][0])
    tied = [B for B in eligible if B != win and thr[B][2] >= thr[win][1]]
    within = lat[win][2] <= latency_ms
    sure = within and not tied
    why = []
    if tied:
        why.append(f"throughput of B={tied} overlaps the winner's interval")
    if not within:
        why.append(f"the winner's {metric} interval reaches {lat[win][2]:.4g} ms, past the budget")
    return BestBatch(win, thr[win][0], lat[win][0], metric, latency_ms, sure, tied, straddle,
                     "; ".join(why) or "the winner is ahead beyond the noise and within the budget")


@dataclass
class Knee:
    """``batch_size``: the first B from which going to the next measured size gains less than ``gain``
    throughput, or None when every step still gains (no knee inside the swept range: measure larger
    batches); ``sure``: the intervals leave no doubt (every earlier step gains ``gain`` beyond its
    interval and this one falls short beyond it; or, with no knee, every step gains beyond its interval);
    ``between``: the B range the knee lies in given the intervals, None on the right meaning "past the
    largest B swept"; ``steps``: (B, next B, ratio, ratio low, ratio high); ``reason``: in words."""

    batch_size: int | None
    sure: bool
    between: tuple
    gain: float
    steps: list = field(default_factory=list)
    reason: str = ""


def knee(points: list[dict], gain: float = 0.05, backend: str | None = None) -> Knee:
    if isinstance(gain, bool) or not (isinstance(gain, (int, float)) and 0 < gain and math.isfinite(gain)):
        raise ArgumentError(f"gain must be a positive fraction, got {gain!r}")
    pts = _one_backend(points, backend)
    steps = []
    for a, b in zip(pts, pts[1:], strict=False):
        ra, la, ha = _throughput(a)
        rb, lb, hb = _throughput(b)
        steps.append((a["batch_size"], b["batch_size"], rb / ra, lb / ha if ha else 0.0, hb / la if la else math.inf))
    threshold = 1 + gain
    # First step whose point estimate falls short; the earliest / latest it could be given the intervals.
    point_idx = next((i for i, s in enumerate(steps) if s[2] < threshold), len(steps))
    earliest = next((i for i, s in enumerate(steps) if s[3] < threshold), len(steps))  # may fall short
    latest = next((i for i, s in enumerate(steps) if s[4] < threshold), len(steps))    # surely falls short
    sizes = [p["batch_size"] for p in pts]
    at = lambda i: sizes[i] if i < len(steps) else None  # noqa: E731  (None: past the largest B)
    if not steps:
        return Knee(None, False, (None, None), gain, steps, "one batch size: no step to judge")
    if point_idx == len(steps):
        reason = (f"no knee inside the swept range: every step gains {gain:.0%} or more; measure batch sizes "
                  f"above {sizes[-1]}")
    else:
        reason = f"from B={sizes[point_idx]} the next size gains {steps[point_idx][2] - 1:.1%}, under {gain:.0%}"
    return Knee(at(point_idx), earliest == latest, (at(earliest), at(latest)), gain, steps, reason)


VERDICTS = ("SAME", "FASTER", "SLOWER", "UNSURE")
DEFAULT_MIN_CHANGE = 0.05


def compare_points(old: dict, new: dict, min_change: float = DEFAULT_MIN_CHANGE) -> str:
    """The verdict on new / old from the medians' intervals: the ratio lies in [new low / old high,
    new high / old low]. With t = ``min_change``: SLOWER when the whole interval is above 1 + t, FASTER
    when it is below 1 / (1 + t), SAME when it lies within [1 / (1 + t), 1 + t] (whatever changed, a
    rerun of the same code moves as much), UNSURE when it straddles a bound or an interval is missing.
    The intervals of a sweep's points span their interleaved rounds' medians, so a point hit by a slow
    spell of the machine has a wide one and comes out UNSURE rather than SLOWER."""
    ol, oh, nl, nh = old.get("time_ms_ci_low"), old.get("time_ms_ci_high"), new.get("time_ms_ci_low"), new.get("time_ms_ci_high")
    if ol is None or oh is None or nl is None or nh is None or ol <= 0:
        return "UNSURE"
    low, high = nl / oh, nh / ol
    up = 1 + min_change
    if low > up:
        return "SLOWER"
    if high < 1 / up:
        return "FASTER"
    return "SAME" if low >= 1 / up and high <= up else "UNSURE"


@dataclass
class Comparison:
    """One row per (backend, batch size) present in both runs: old and new medians, ratio new/old, verdict."""

    rows: list

    def counts(self) -> dict:
        return {v: sum(r["verdict"] == v for r in self.rows) for v in VERDICTS}

    def __str__(self) -> str:
        head = f"{'backend':<24} {'B':>6} {'old ms':>10} {'new ms':>10} {'new/old':>8}  verdict"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['backend']:<24} {r['batch_size']:>6} {r['old_ms']:>10.4g} {r['new_ms']:>10.4g} "
                         f"{r['ratio']:>8.3f}  {r['verdict']}")
        return "\n".join(lines)


def compare(old: SweepLike, new: SweepLike, min_change: float = DEFAULT_MIN_CHANGE) -> Comparison:
    """Compare two sweeps (SweepResult objects, or paths of files written by ``to_json`` / ``out=``),
    point by point: see :func:`compare_points`. ``min_change``: the smallest relative change called
    FASTER or SLOWER (default 10 %: what reruns of the same code on one machine were seen to move)."""
    if isinstance(min_change, bool) or not (isinstance(min_change, (int, float)) and 0 <= min_change < 10):
        raise ArgumentError(f"min_change must be a fraction in [0, 10), got {min_change!r}")

    def load(r: SweepLike) -> list[dict[str, Any]]:
        if hasattr(r, "points"):
            return r.points
        if not isinstance(r, (str, os.PathLike)):
            raise ArgumentError(f"compare() takes SweepResults or result file paths, got {r!r}")
        return files.load(r)[0]

    a = {(p["backend"], p["batch_size"]): p for p in load(old) if p.get("time_ms")}
    rows = []
    for p in load(new):
        key = (p["backend"], p["batch_size"])
        if key in a and p.get("time_ms"):
            q = a[key]
            rows.append({"backend": key[0], "batch_size": key[1], "old_ms": q["time_ms"], "new_ms": p["time_ms"],
                         "ratio": p["time_ms"] / q["time_ms"], "verdict": compare_points(q, p, min_change)})
    return Comparison(rows)
