"""Decisions from measured points, each with how sure it is: the best batch under a latency budget, the
knee of the throughput curve, and SAME / FASTER / SLOWER / UNSURE between two runs. No winner is
declared inside the noise: every rule compares 95 % confidence intervals, not point estimates alone.

Throughput is rows per second, B / median time; its interval is B over the median's interval. A
quantile's interval (p90, p99) is the order-statistic one from the point's raw samples (exact for any
distribution), as the timer's median interval is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ArgumentError

METRICS = {"median": "time_ms", "mean": "time_ms_mean", "p90": "time_ms_p90", "p99": "time_ms_p99"}
QUANTILES = {"p90": 0.90, "p99": 0.99}


def quantile_ci(samples, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic interval for the q-quantile of the distribution the samples came from: the sorted
    samples' j-th and k-th with j, k from Binomial(n, q) quantiles; (-inf or inf where n is too small)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(samples, dtype=np.float64))
    n, alpha = len(x), 1 - confidence
    if n == 0:
        return -math.inf, math.inf
    j = int(binom.ppf(alpha / 2, n, q))      # P(X <= j-1) < alpha/2: x[j-1] (1-based j) is a lower bound
    k = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    low = x[j - 1] if j >= 1 else -math.inf
    high = x[k - 1] if k <= n else math.inf
    return float(low), float(high)


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
    throughput (the largest B if every step gains); ``sure``: every step before it gains ``gain`` beyond
    its interval and this step falls short beyond it; ``between``: the B range in which the knee lies
    given the intervals; ``steps``: (B, next B, ratio, ratio low, ratio high)."""

    batch_size: int
    sure: bool
    between: tuple
    gain: float
    steps: list = field(default_factory=list)


def knee(points: list[dict], gain: float = 0.05, backend: str | None = None) -> Knee:
    if not (isinstance(gain, (int, float)) and gain > 0):
        raise ArgumentError(f"gain must be a positive fraction, got {gain!r}")
    pts = _one_backend(points, backend)
    steps = []
    for a, b in zip(pts, pts[1:]):
        ra, la, ha = _throughput(a)
        rb, lb, hb = _throughput(b)
        steps.append((a["batch_size"], b["batch_size"], rb / ra, lb / ha if ha else 0.0, hb / la if la else math.inf))
    threshold = 1 + gain
    # First step whose point estimate falls short; the earliest / latest it could be given the intervals.
    point_idx = next((i for i, s in enumerate(steps) if s[2] < threshold), len(steps))
    earliest = next((i for i, s in enumerate(steps) if s[3] < threshold), len(steps))  # may fall short
    latest = next((i for i, s in enumerate(steps) if s[4] < threshold), len(steps))    # surely falls short
    sizes = [p["batch_size"] for p in pts]
    return Knee(sizes[point_idx], earliest == latest, (sizes[earliest], sizes[latest]), gain, steps)


VERDICTS = ("SAME", "FASTER", "SLOWER", "UNSURE")


def compare_points(old: dict, new: dict, same_within: float = 0.02) -> str:
    """FASTER / SLOWER when the two medians' intervals are disjoint; SAME when they overlap and their
    union lies within ``same_within`` of the old median; UNSURE otherwise (too wide to tell)."""
    ol, oh, nl, nh = old.get("time_ms_ci_low"), old.get("time_ms_ci_high"), new.get("time_ms_ci_low"), new.get("time_ms_ci_high")
    if None in (ol, oh, nl, nh):
        return "UNSURE"
    if nh < ol:
        return "FASTER"
    if nl > oh:
        return "SLOWER"
    ref = old["time_ms"]
    return "SAME" if max(oh, nh) <= ref * (1 + same_within) and min(ol, nl) >= ref * (1 - same_within) else "UNSURE"


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


def compare(old, new, same_within: float = 0.02) -> Comparison:
    """Compare two sweeps (SweepResult objects or paths of files written by ``to_json`` / ``out=``)."""
    from .sweep import SweepResult

    def load(r):
        return r if isinstance(r, SweepResult) else SweepResult.from_json(r)

    a = {(p["backend"], p["batch_size"]): p for p in load(old).points if p.get("time_ms")}
    rows = []
    for p in load(new).points:
        key = (p["backend"], p["batch_size"])
        if key in a and p.get("time_ms"):
            q = a[key]
            rows.append({"backend": key[0], "batch_size": key[1], "old_ms": q["time_ms"], "new_ms": p["time_ms"],
                         "ratio": p["time_ms"] / q["time_ms"], "verdict": compare_points(q, p, same_within)})
    return Comparison(rows)
