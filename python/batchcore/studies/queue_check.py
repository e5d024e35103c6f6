"""The deployment study's check of its simulation against the real queue, on one setting.

The real queue runs in segments of the arrivals, and before each segment the service times are measured
again (one round over the batch sizes): both then see the same machine, whose speed drifts by a few per
cent over seconds on these VMs. Each segment is simulated on the arrivals as the real run queued them,
with the service times of every round; the simulation's p50 and p99 intervals join the order-statistic
interval with the 2.5-97.5 % range over bootstrap replicates of the service times (rounds drawn with
replacement, then samples within them, so that the drift between rounds counts). The two agree on a
quantile when real / simulated is neither FASTER nor SLOWER in :func:`batchcore.compare`'s terms (10 %).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..results import decisions
from .serving import Served, ServiceTimes, observed_times, resample, serve, service_times, simulate

AGREE_WITHIN = 0.10  # bc.compare's default min_change
BOOTSTRAP = 40       # replicates of the service times behind the simulation's intervals
SEGMENTS = 4


def merge(parts: list[ServiceTimes]) -> ServiceTimes:
    """The samples of several measurements of the same sizes, pooled."""
    sizes = parts[0].hot
    return ServiceTimes({b: np.concatenate([p.hot[b] for p in parts]) for b in sizes},
                        {b: np.concatenate([p.idle[b] for p in parts]) for b in sizes},
                        np.concatenate([p.wakeup for p in parts]), np.concatenate([p.stalls for p in parts]),
                        sum(p.passes for p in parts))


def joined(parts: list[Served]) -> Served:
    """Segments of a run as one: their latencies and passes, their spans added."""
    return Served(np.concatenate([p.latencies for p in parts]), [b for p in parts for b in p.batches],
                  sum(p.span_s for p in parts), arrival_span_s=sum(p.arrival_span_s for p in parts))


def agree(sim: list[float], real: list[float]) -> bool:
    """real / simulated is neither FASTER nor SLOWER in ``bc.compare``'s terms with its ``min_change`` of 10 %
    (what reruns of the same code move on one of these machines): the 95 % intervals overlap, or come within
    10 % of each other. Bare overlap is too strict here: the real run is seconds after the measurements,
    and the machine's speed wanders by more than the narrow p50 intervals between them."""
    verdict = decisions.compare_points({"time_ms_ci_low": sim[0], "time_ms_ci_high": sim[1]},
                                       {"time_ms_ci_low": real[0], "time_ms_ci_high": real[1]}, AGREE_WITHIN)
    return verdict in ("SAME", "UNSURE")


def filled(times: ServiceTimes, fallback: ServiceTimes) -> ServiceTimes:
    """``times``, with ``fallback``'s samples wherever it has none."""
    def pick(t: np.ndarray, f: np.ndarray) -> np.ndarray:
        return t if len(t) else f

    return ServiceTimes({b: pick(t, fallback.hot[b]) for b, t in times.hot.items()},
                        {b: pick(t, fallback.idle[b]) for b, t in times.idle.items()},
                        pick(times.wakeup, fallback.wakeup), times.stalls, times.passes)


def simulated_summary(rounds: list[ServiceTimes], fallback: ServiceTimes, queued: list[np.ndarray], max_batch: int,
                      delay: float, rate: float, seed: int) -> dict[str, Any]:
    """The segments' arrivals simulated with the pooled ``rounds`` of service times: the summary, its p50 and
    p99 intervals widened to the 2.5-97.5 % range over bootstrap replicates. A replicate draws the rounds
    with replacement, then samples within them, so that the machine's drift between rounds (a few per cent
    over seconds here) widens the interval as it should."""
    def simulated(times: ServiceTimes, offset: int) -> Served:
        return joined([simulate(a, times, max_batch, delay, seed + offset + k) for k, a in enumerate(queued)])

    summary = simulated(filled(merge(rounds), fallback), 0).summary(rate)
    rng = np.random.default_rng(seed + 1)

    def replicate(r: int) -> np.ndarray:
        drawn = filled(merge([rounds[i] for i in rng.integers(0, len(rounds), len(rounds))]), fallback)
        return np.quantile(simulated(resample(drawn, rng), 100 * (r + 1)).latencies, (0.5, 0.99))

    boot = np.array([replicate(r) for r in range(BOOTSTRAP)]) * 1e3
    for col, q in enumerate(("p50", "p99")):
        low, high = np.quantile(boot[:, col], (0.025, 0.975))
        summary[f"{q}_ci_ms"] = [min(summary[f"{q}_ci_ms"][0], float(low)), max(summary[f"{q}_ci_ms"][1], float(high))]
    return summary


def check_setting(forward: Callable[[np.ndarray], Any], rows: int, arrivals: np.ndarray, max_batch: int,
                  max_delay_ms: float, samples: int, rate: float, seed: int) -> dict[str, Any]:
    """The real queue against its simulation for one setting, twice: *forecast*, from service times measured
    before each segment (what the study's table rests on), and *replayed*, from the times the real run's own
    passes took (:func:`observed_times`; the queue model alone is then on trial, the machine's hiccups during
    the run being in both). Their summaries, and whether each agrees with the real run on p50 and p99."""
    delay = max_delay_ms / 1e3
    rounds, segments = [], []
    for k, idx in enumerate(np.array_split(np.arange(len(arrivals)), SEGMENTS)):
        rounds.append(service_times(forward, rows, max_batch, max(2, samples // SEGMENTS), seed + k, rounds=1,
                                    idle_s=1 / rate))
        segments.append(serve(forward, rows, arrivals[idx] - arrivals[idx[0]], max_batch, delay, seed + k))
    measured = merge(rounds)
    queued = [s.arrivals for s in segments if s.arrivals is not None]
    observed = [observed_times(s, max_batch, delay) for s in segments]
    sim = simulated_summary(rounds, measured, queued, max_batch, delay, rate, seed)
    replay = simulated_summary(observed, measured, queued, max_batch, delay, rate, seed)
    real = joined(segments).summary(rate)
    return {"max_batch": max_batch, "max_delay_ms": max_delay_ms, "simulated": sim, "replayed": replay, "real": real,
            "agree": {q: agree(sim[f"{q}_ci_ms"], real[f"{q}_ci_ms"]) for q in ("p50", "p99")},
            "replay_agree": {q: agree(replay[f"{q}_ci_ms"], real[f"{q}_ci_ms"]) for q in ("p50", "p99")}}
