"""Study 5: which dynamic-batching setting should a server use?

The folklore: "the best batch size must be found empirically" (by load-testing each setting). The
measurement: the model's service time per batch size, measured once, then a dynamic batcher
(:mod:`batchcore.studies.serving`) simulated for every (max batch size, max queue delay) at a Poisson
arrival rate: p50 and p99 latency with their 95 % intervals, throughput, mean batch. The best setting under
a p99 budget is scored as MLPerf's Server scenario scores a system: the highest arrival rate whose p99
stays within the budget (a scan of rates refined by bisection, per setting). The simulation is then checked against the same
queue run for real in this process, with real forward passes (:mod:`batchcore.studies.queue_check`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import Backend
from ..checks import positive_int
from ..errors import ArgumentError
from ..info import info
from ..present.progress import Steps
from .outputs import batch_forward
from .queue_check import check_setting
from .record import Study, Table
from .serving import STALL_FACTOR, ServiceTimes, poisson_arrivals, service_times, simulate

# The real queue's producer and worker are Python threads: each request costs them some 10-20 us of
# interpreter time under one GIL, which the simulation does not model. Past a few thousand requests per
# second that contention, not the model, sets the real latency: the default rate stays below it.
MAX_DEFAULT_RATE = 5000.0
QUESTION = "Which dynamic-batching setting (max batch size, max queue delay) serves the most load within a p99 budget?"


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value):
        raise ArgumentError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def max_rate_within(service: ServiceTimes, max_batch: int, delay_s: float, budget_s: float, requests: int,
                    seed: int, grid: int = 24, steps: int = 10) -> float:
    """The highest Poisson rate (requests/s) whose simulated p99 latency is within ``budget_s``; 0 when none
    is. p99 need not grow with the rate (with a queue delay, a lone request waits the whole delay, a busy
    queue fills batches sooner), so rates are scanned on a geometric grid up to 1.2 x the setting's capacity
    (the most rows per second any batch size up to max_batch passes back to back, at its median) and the
    highest good one refined by bisection towards the next."""
    capacity = max(b / float(np.median(service.hot[b])) for b in range(1, max_batch + 1))  # medians are noisy

    def ok(rate: float) -> bool:
        served = simulate(poisson_arrivals(rate, requests, seed), service, max_batch, delay_s, seed)
        return float(np.quantile(served.latencies, 0.99)) <= budget_s

    rates = np.geomspace(capacity / 200, 1.2 * capacity, grid)
    good = [i for i, r in enumerate(rates) if ok(float(r))]
    if not good:
        return 0.0
    lo = float(rates[good[-1]])
    if good[-1] == grid - 1:
        return lo
    hi = float(rates[good[-1] + 1])
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def deployment(module: Any, data: Any, rate_per_s: float | None = None, max_batch_sizes: Any = (1, 2, 4, 8, 16),
               max_delays_ms: Any = (0.0, 0.5, 2.0), p99_budget_ms: float | None = None, backend: Backend | None = None,
               requests: int = 3000, service_samples: int = 60, validate: Any = "best", seed: int = 0,
               progress: bool | None = None) -> Study:
    """Study 5 for ``module`` on rows of ``data`` through ``backend`` (default ``bc.native(threads=1)`` where
    batchcore reads the module, else ``bc.torch()``). ``rate_per_s``: the arrival rate of the table (default
    1.5 x what B=1 passes can serve, a server that must batch, at most MAX_DEFAULT_RATE). ``p99_budget_ms``:
    the budget the best setting is chosen under (default 4 x the median pass of the largest batch).
    ``validate``: "best" (the best setting, and the largest batch without delay), a list of
    (max_batch, max_delay_ms), or None: run those for real too (:mod:`batchcore.studies.queue_check`)."""
    from ..backends import native, torch

    sizes = sorted({positive_int(b, "every max batch size") for b in max_batch_sizes})
    delays = sorted({float(_positive(d, "every max delay") if d else 0.0) for d in max_delays_ms})
    requests = positive_int(requests, "requests", maximum=10**6)
    if backend is None:
        try:  # one thread: the worker computes, the other core is the load's (a pool would fight it for it)
            forward, rows = batch_forward(module, data, native(threads=1))
            backend_label = "native[seq]"
        except ArgumentError:
            forward, rows = batch_forward(module, data, torch())
            backend_label = "torch[cpu]"
    else:
        forward, rows = batch_forward(module, data, backend)
        backend_label = backend.label
    with Steps("deployment study", max(sizes) + len(sizes) * len(delays), progress) as steps:

        def timing(b: int) -> None:
            steps.now(f"service time, B={b}")
            steps.done()

        samples = positive_int(service_samples, "service_samples")
        if rate_per_s is None:  # 1.5 x what unbatched passes serve: a first look at B=1's passes
            first = service_times(forward, rows, 1, 8, seed, rounds=1)
            rate = min(1.5 / float(np.median(first.hot[1])), MAX_DEFAULT_RATE)
        else:
            rate = _positive(rate_per_s, "rate_per_s")
        service = service_times(forward, rows, max(sizes), samples, seed, timing, idle_s=1 / rate)
        median_ms = {b: 1e3 * float(np.median(t)) for b, t in service.hot.items()}
        budget_ms = _positive(p99_budget_ms, "p99_budget_ms") if p99_budget_ms is not None else 4 * median_ms[max(sizes)]
        arrivals = poisson_arrivals(rate, requests, seed)
        settings = []
        for b in sizes:
            for d in delays:
                steps.now(f"simulating max_batch={b}, max_delay={d:g} ms")
                row = {"max_batch": b, "max_delay_ms": d,
                       **simulate(arrivals, service, b, d / 1e3, seed).summary(rate),
                       "max_rate_within_budget": max_rate_within(service, b, d / 1e3, budget_ms / 1e3, requests, seed)}
                settings.append(row)
                steps.done()
    best = max(settings, key=lambda s: s["max_rate_within_budget"])
    checks = _validate(validate, best, sizes, forward, rows, arrivals, samples, rate, seed)
    data_out = {"backend": backend_label, "rate_per_s": rate, "p99_budget_ms": budget_ms, "requests": requests,
                "service_ms": {str(b): (1e3 * t).tolist() for b, t in service.hot.items()},
                "idle_service_ms": {str(b): (1e3 * t).tolist() for b, t in service.idle.items()},
                "wakeup_ms": (1e3 * service.wakeup).tolist(), "stall_ms": (1e3 * service.stalls).tolist(),
                "measured_passes": service.passes, "settings": settings,
                "best": {"max_batch": best["max_batch"], "max_delay_ms": best["max_delay_ms"]}, "validation": checks}
    return Study("deployment", QUESTION, verdict(data_out), tables(data_out), notes(data_out, median_ms), data_out, info())


def _validate(validate: Any, best: dict[str, Any], sizes: list[int], forward: Any, rows: int, arrivals: np.ndarray,
              samples: int, rate: float, seed: int) -> list[dict[str, Any]]:
    if validate is None:
        return []
    if validate == "best":
        pairs = [(best["max_batch"], best["max_delay_ms"])]
        pairs += [(b, 0.0) for b in sizes[-1:] if (b, 0.0) not in pairs]
    elif isinstance(validate, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in validate):
        pairs = [(positive_int(b, "a validated max batch"), float(d)) for b, d in validate]
    else:
        raise ArgumentError(f"validate must be 'best', a list of (max_batch, max_delay_ms) or None, got {validate!r}")
    for b, _ in pairs:
        if b > max(sizes):
            raise ArgumentError(f"a validated max batch of {b} exceeds the measured sizes (up to {max(sizes)})")
    return [check_setting(forward, rows, arrivals, b, d, samples, rate, seed) for b, d in pairs]


def verdict(d: dict[str, Any]) -> str:
    key = (d["best"]["max_batch"], d["best"]["max_delay_ms"])
    best = next(s for s in d["settings"] if (s["max_batch"], s["max_delay_ms"]) == key)
    single = max((s for s in d["settings"] if s["max_batch"] == 1), key=lambda s: s["max_rate_within_budget"], default=None)
    if best["max_rate_within_budget"] == 0:
        text = (f"No setting keeps p99 within {d['p99_budget_ms']:.3g} ms at any rate: the passes alone take longer "
                "than the budget at their 99th percentile; raise the budget or speed the model up")
    else:
        text = _best_sentence(d, best, single)
    if d["validation"]:  # what the real queue says of the model holds whatever the budget allowed
        text += ". " + _validation_sentence(d["validation"])
    return text + "."


def _best_sentence(d: dict[str, Any], best: dict[str, Any], single: dict[str, Any] | None) -> str:
    text = (f"With a p99 budget of {d['p99_budget_ms']:.3g} ms, max batch {best['max_batch']} with a "
            f"{best['max_delay_ms']:g} ms queue delay serves the most load: {best['max_rate_within_budget']:.4g} "
            "requests/s within the budget")
    if single is not None and single["max_rate_within_budget"] > 0:
        text += f", {best['max_rate_within_budget'] / single['max_rate_within_budget']:.2f}x what unbatched passes serve"
    elif single is not None:
        text += "; unbatched passes meet the budget at no rate"
    return text


def _agreeing(checks: list[dict[str, Any]], key: str) -> list[str]:
    return [q for q in ("p50", "p99") if all(v[key][q] for v in checks)]


def _validation_sentence(checks: list[dict[str, Any]]) -> str:
    """What the real runs say of the simulation: of its queue model (replayed with the run's own service
    times) and of its forecast (from the times measured beforehand, what the table above rests on)."""
    replay, forecast = _agreeing(checks, "replay_agree"), _agreeing(checks, "agree")
    both = lambda qs: " and ".join(qs) if qs else "neither p50 nor p99"  # noqa: E731
    model = ("The queue model, replayed with the service times the real run paid, agrees with the real queue "
             f"within the intervals on {both(replay)}")
    if forecast == ["p50", "p99"]:
        return model + "; so does the forecast from the times measured beforehand"
    return (model + f"; the forecast from the times measured beforehand on {both(forecast)} (the machine's speed "
            "and hiccups during the run differ from those measured before it: see the table)")


def tables(d: dict[str, Any]) -> list[Table]:
    out = [Table(f"Simulated at {d['rate_per_s']:.4g} requests/s ({d['requests']} Poisson arrivals, {d['backend']}); "
                 f"the last column is the highest rate whose p99 is within {d['p99_budget_ms']:.3g} ms",
                 ["max batch", "max delay ms", "p50 ms", "p99 ms", "p99 95 % CI", "throughput /s", "mean batch",
                  "overloaded", "max rate within budget /s"],
                 [[s["max_batch"], s["max_delay_ms"], s["p50_ms"], s["p99_ms"],
                   _interval(s["p99_ci_ms"]), s["throughput_per_s"], s["mean_batch"],
                   "yes" if s["overloaded"] else "no", s["max_rate_within_budget"]] for s in d["settings"]])]
    if d["validation"]:
        rows = []
        for v in d["validation"]:
            for label, key, agreed in (("forecast", "simulated", "agree"), ("replayed", "replayed", "replay_agree"),
                                       ("real", "real", None)):
                s = v[key]
                rows.append([v["max_batch"], v["max_delay_ms"], label, s["p50_ms"], _interval(s["p50_ci_ms"]),
                             s["p99_ms"], _interval(s["p99_ci_ms"]),
                             ", ".join(f"{q} {'yes' if ok else 'no'}" for q, ok in v[agreed].items()) if agreed else ""])
        out.append(Table("The simulation against the real queue (same arrivals, real forward passes in this process): "
                         "forecast from service times measured before each segment, replayed from the times the "
                         "real passes took; agree: real / simulated neither FASTER nor SLOWER (10 %)",
                         ["max batch", "max delay ms", "run", "p50 ms", "p50 95 % CI", "p99 ms", "p99 95 % CI",
                          "agrees with real"], rows))
    return out


def _interval(ci: list[float]) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _stalls_note(d: dict[str, Any]) -> str:
    stalls, passes = d.get("stall_ms", []), d.get("measured_passes", 0)
    if not stalls:
        return f"No measured pass (of {passes}) stalled beyond {STALL_FACTOR:g}x its size's median."
    return (f"{len(stalls)} of {passes} measured passes stalled beyond {STALL_FACTOR:g}x their size's median (by "
            f"{min(stalls):.3g} to {max(stalls):.3g} ms): pooled as the machine's, every simulated pass stalls "
            f"with probability {len(stalls) / passes:.2g} by one of them.")


def notes(d: dict[str, Any], median_ms: dict[int, float]) -> list[str]:
    shown = ", ".join(f"B={b}: {m:.3g}" for b, m in median_ms.items() if b & (b - 1) == 0)
    return [f"Median time per pass back to back (ms; measured through the server's own threads: rows gathered, forward, "
            f"bookkeeping): {shown}; a pass that a waiting worker starts pays the worker's wake-up (median "
            f"{float(np.median(d['wakeup_ms'])):.3g} ms) and a pass after an idle spell, both measured the same way.",
            _stalls_note(d),
            "Latency: from a request's arrival to the end of the pass that served it; intervals: 95 % order-statistic.",
            "The best setting is MLPerf Server's score: the highest arrival rate whose p99 is within the budget."]
