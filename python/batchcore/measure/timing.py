"""How batchcore times things: one policy (:class:`Timer`), run by the compiled core, for every backend.

The policy is nvbench's, with torch.utils.benchmark's block sizing: untimed calls for at least
``warmup_s`` (and at least ``warmup_calls``), then samples until the 95 % confidence interval of the
median is within ``target`` of it (relative half-width), with at least ``min_samples`` samples and
``min_time_s`` of sampling, or until ``timeout_s``. A sample is a block of calls long enough that
reading the clock costs less than ``overhead_frac`` of it (one call for anything over ~0.3 ms). The
interval is the order-statistic one (exact for any distribution of samples, no normality assumed).
Native passes are timed inside the core around the C++ call; torch and NumPy passes by the same loop
around the Python call (their Python overhead is part of what a user pays).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from .. import _core


def quantile_ci(samples: Iterable[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic interval for the q-quantile of the distribution the samples came from: the sorted
    samples' j-th and k-th with j, k from Binomial(n, q) quantiles; (-inf or inf where n is too small)."""
    from scipy.stats import binom  # a declared dependency; imported here, as it costs 0.4 s at import time

    x = np.sort(np.asarray(samples, dtype=np.float64))
    n, alpha = len(x), 1 - confidence
    if n == 0:
        return -math.inf, math.inf
    j = int(binom.ppf(alpha / 2, n, q))      # P(X <= j-1) < alpha/2: x[j-1] (1-based j) is a lower bound
    k = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    low = x[j - 1] if j >= 1 else -math.inf
    high = x[k - 1] if k <= n else math.inf
    return float(low), float(high)


@dataclass(frozen=True)
class Timer:
    """Measurement policy. Times in seconds; ``target`` and ``overhead_frac`` are fractions."""

    target: float = 0.01
    confidence: float = 0.95
    min_samples: int = 10
    min_time_s: float = 0.5
    timeout_s: float = 15.0
    warmup_s: float = 0.025
    warmup_calls: int = 1
    max_samples: int = 100_000
    overhead_frac: float = 1e-4

    def policy(self) -> _core.TimerPolicy:
        """The core's policy object; raises ``ArgumentError`` naming a setting outside its range."""
        p = _core.TimerPolicy()
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _core.ArgumentError(f"timer: {name} must be a number, got {value!r}")
            try:
                setattr(p, name, value)
            except TypeError as e:  # a float for an integer setting, or an integer past its C++ type
                raise _core.ArgumentError(f"timer: {name} has the wrong type or is out of range ({value!r})") from e
        p.check()
        return p

    def measure(self, fn: Callable[[], object], sample: Callable[[int], float | tuple[float, bool]] | None = None) -> Measurement:
        """Time ``fn()`` (a callable without arguments) under this policy. ``fn`` also serves the
        warm-up; by default a sample is the core's monotonic clock around a block of calls. A device
        backend passes ``sample(calls)``, which runs a block of ``calls`` calls and returns its duration
        in nanoseconds (e.g. from CUDA events), or ``(ns, rejected)`` to have the sample discarded."""
        if not callable(fn):
            raise _core.ArgumentError(f"Timer.measure needs a callable without arguments, got {fn!r}")
        if sample is not None and not callable(sample):
            raise _core.ArgumentError(f"sample must be a callable sample(calls) or None, got {sample!r}")
        return Measurement.from_summary(_core.time_callable(fn, self.policy(), sample), self)

    def per_round(self, rounds: int) -> Timer:
        """This policy for one of ``rounds`` interleaved rounds: the same target, warm-up and sample
        rules, a ``rounds``-th of the sampling time and of the timeout (a sweep's total budget stays)."""
        return replace(self, min_time_s=self.min_time_s / rounds, timeout_s=self.timeout_s / rounds,
                       warmup_s=min(self.warmup_s, self.timeout_s / rounds))

    def replay(self, call_ns: Iterable[float], clock_read_ns: float = 0.0, rejected: Iterable[bool] = ()) -> Measurement:
        """This policy on planted call durations (ns, used cyclically) and a fake clock whose every
        read costs ``clock_read_ns``; sample j is rejected when ``rejected[j]`` (cyclically). For tests
        and for reasoning about the stopping rule."""
        s = _core.timer_replay(self.policy(), [float(c) for c in call_ns], float(clock_read_ns),
                               [bool(r) for r in rejected])
        return Measurement.from_summary(s, self)


# The variable that changes the default policy: comma-separated ``name=value`` settings of :class:`Timer`
TIMER_VARIABLE = "BATCHCORE_TIMER"


def default_timer() -> Timer:
    """The policy wherever none is passed: ``Timer()``, with the settings ``$BATCHCORE_TIMER`` names
    (e.g. ``min_time_s=0,timeout_s=0.2,target=0.5``: a smoke run of a script, in seconds rather than
    minutes, without editing it). Every point records the policy it ran under. ArgumentError naming the
    variable for a setting that is not a Timer's, or a value that is not a number in its range."""
    text = os.environ.get(TIMER_VARIABLE, "").strip()
    if not text:
        return Timer()
    names, settings = {f.name: f.type for f in fields(Timer)}, dict[str, Any]()
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in names:
            raise _core.ArgumentError(f"${TIMER_VARIABLE}: {item.strip()!r} is not a setting name=value of bc.Timer "
                                      f"({', '.join(names)})")
        try:
            settings[name] = int(value) if names[name] == "int" else float(value)
        except ValueError:
            raise _core.ArgumentError(f"${TIMER_VARIABLE}: {name}={value!r} is not a number") from None
    timer = Timer(**settings)
    try:
        timer.policy()
    except _core.ArgumentError as e:
        raise _core.ArgumentError(f"${TIMER_VARIABLE}: {e}") from None
    return timer


def as_timer(timer: Timer | None) -> Timer:
    """``timer``, or :func:`default_timer` for None; ArgumentError for anything that is not a Timer."""
    if timer is None:
        return default_timer()
    if not isinstance(timer, Timer):
        raise _core.ArgumentError(f"timer must be a batchcore.Timer, got {type(timer).__name__}")
    return timer


NOISY_IQR_FRAC = 0.10  # torch.utils.benchmark warns past this IQR / median


@dataclass
class Measurement:
    """One timed point: per-call statistics in milliseconds, the raw samples, and how the stopping rule
    ended (``target_met``, ``timed_out``, ``discarded``: samples rejected by the sampler)."""

    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    ci_rel_halfwidth: float
    mean_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    p90_ms: float
    p99_ms: float
    samples: int
    calls_per_sample: int
    target_met: bool
    timed_out: bool
    discarded: int
    warmup_s: float
    sampling_s: float
    clock_overhead_ns: float
    samples_ms: list = field(repr=False, default_factory=list)
    timer: dict = field(default_factory=dict)
    round_medians_ms: list = field(default_factory=list)  # interleaved rounds (sweep), else empty

    @classmethod
    def from_summary(cls, s: dict, timer: Timer) -> Measurement:
        per_call = ("median", "ci_low", "ci_high", "mean", "min", "max", "q1", "q3", "p90", "p99")
        ms = {f"{k}_ms": s[f"{k}_ns"] / 1e6 for k in per_call}
        return cls(
            **ms, ci_rel_halfwidth=s["ci_rel_halfwidth"], samples=len(s["samples_ns"]),
            calls_per_sample=s["calls_per_sample"], target_met=s["target_met"], timed_out=s["timed_out"],
            discarded=s["discarded"], warmup_s=s["warmup_s"], sampling_s=s["sampling_s"],
            clock_overhead_ns=s["clock_overhead_ns"], samples_ms=[t / 1e6 for t in s["samples_ns"]],
            timer=asdict(timer))

    @classmethod
    def pooled(cls, rounds: list[Measurement], timer: Timer) -> Measurement:
        """One measurement from interleaved rounds of the same point. Statistics are those of all samples
        together; the median's interval also spans every round's median (with R >= 6 rounds, [min, max]
        of R round medians holds the median of round medians with probability 1 - 2^(1-R) >= 96.9 %), so
        a slow spell of the machine that hit some rounds widens the interval instead of moving the point
        unseen. ``target_met``: that interval is within the timer's target."""
        if len(rounds) == 1:
            return rounds[0]
        samples = [t for r in rounds for t in r.samples_ms]
        x = np.asarray(samples, dtype=np.float64)
        med = float(np.median(x)) if len(x) else math.nan
        low, high = quantile_ci(x, 0.5, timer.confidence) if len(x) else (math.nan, math.nan)
        round_medians = [r.median_ms for r in rounds if r.samples]
        if round_medians:
            low, high = min(low, *round_medians), max(high, *round_medians)
        half = max(med - low, high - med) / med if med > 0 and math.isfinite(low) and math.isfinite(high) else math.inf
        q = (lambda p: float(np.quantile(x, p))) if len(x) else (lambda p: math.nan)
        return cls(
            median_ms=med, ci_low_ms=low, ci_high_ms=high, ci_rel_halfwidth=half,
            mean_ms=float(x.mean()) if len(x) else math.nan, min_ms=float(x.min()) if len(x) else math.nan,
            max_ms=float(x.max()) if len(x) else math.nan, q1_ms=q(0.25), q3_ms=q(0.75), p90_ms=q(0.90), p99_ms=q(0.99),
            samples=len(x), calls_per_sample=max(r.calls_per_sample for r in rounds),
            target_met=len(x) >= timer.min_samples and half <= timer.target,
            timed_out=any(r.timed_out for r in rounds), discarded=sum(r.discarded for r in rounds),
            warmup_s=sum(r.warmup_s for r in rounds), sampling_s=sum(r.sampling_s for r in rounds),
            clock_overhead_ns=float(np.median([r.clock_overhead_ns for r in rounds])), samples_ms=samples,
            timer=asdict(timer), round_medians_ms=round_medians)

    @property
    def noisy(self) -> bool:
        """Whether the spread is wide: IQR / median over 10 %."""
        return not (self.median_ms > 0) or (self.q3_ms - self.q1_ms) / self.median_ms > NOISY_IQR_FRAC

    def to_dict(self) -> dict:
        d = asdict(self)
        d["noisy"] = self.noisy
        # JSON has no infinity: an interval that does not exist (too few samples) is null.
        if not math.isfinite(d["ci_rel_halfwidth"]):
            d["ci_rel_halfwidth"] = None
        return d
