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
from dataclasses import asdict, dataclass, field

from . import _core


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
            try:
                setattr(p, name, value)
            except TypeError as e:
                raise _core.ArgumentError(f"timer: {name} has the wrong type ({value!r})") from e
        p.check()
        return p

    def measure(self, fn, sample=None) -> "Measurement":
        """Time ``fn()`` (a callable without arguments) under this policy. ``fn`` also serves the
        warm-up; by default a sample is the core's monotonic clock around a block of calls. A device
        backend passes ``sample(calls)``, which runs a block of ``calls`` calls and returns its duration
        in nanoseconds (e.g. from CUDA events), or ``(ns, rejected)`` to have the sample discarded."""
        return Measurement.from_summary(_core.time_callable(fn, self.policy(), sample), self)

    def replay(self, call_ns, clock_read_ns: float = 0.0, rejected=()) -> "Measurement":
        """This policy on planted call durations (ns, used cyclically) and a fake clock whose every
        read costs ``clock_read_ns``; sample j is rejected when ``rejected[j]`` (cyclically). For tests
        and for reasoning about the stopping rule."""
        s = _core.timer_replay(self.policy(), [float(c) for c in call_ns], float(clock_read_ns),
                               [bool(r) for r in rejected])
        return Measurement.from_summary(s, self)


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

    @classmethod
    def from_summary(cls, s: dict, timer: Timer) -> "Measurement":
        per_call = ("median", "ci_low", "ci_high", "mean", "min", "max", "q1", "q3", "p90", "p99")
        ms = {f"{k}_ms": s[f"{k}_ns"] / 1e6 for k in per_call}
        return cls(
            **ms, ci_rel_halfwidth=s["ci_rel_halfwidth"], samples=len(s["samples_ns"]),
            calls_per_sample=s["calls_per_sample"], target_met=s["target_met"], timed_out=s["timed_out"],
            discarded=s["discarded"], warmup_s=s["warmup_s"], sampling_s=s["sampling_s"],
            clock_overhead_ns=s["clock_overhead_ns"], samples_ms=[t / 1e6 for t in s["samples_ns"]],
            timer=asdict(timer))

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
