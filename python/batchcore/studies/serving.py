"""A dynamic batcher, twice: simulated from measured service times, and run for real in this process.

The policy is that of Triton's dynamic batcher and TorchServe's ``batchSize`` / ``maxBatchDelay``, with one
worker: when the worker is free and requests wait, it takes up to ``max_batch`` of them at once if that many
are queued; otherwise it waits until ``max_batch`` are queued or the oldest has waited ``max_delay``,
whichever comes first, and takes what is queued then (at most ``max_batch``). A request's latency runs from
its arrival to the end of the pass that served it. Arrivals are Poisson: exponential gaps at a given rate.

:func:`simulate` replays the policy on arrival times, drawing each pass's service time from the times
measured for its batch size (:func:`service_times`, timed around the same call the real server makes,
gathering of the batch's rows included). :func:`serve` runs the policy with a producer thread that releases
requests at given arrival times and a worker thread that runs the real forward passes; it records when each
request was really queued, so that the simulation it is checked against replays those very arrivals.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..measure.timing import quantile_ci

QUANTILES = np.linspace(0.01, 0.99, 99)  # the latency distribution kept with a summary, for plots
STALL_FACTOR = 3.0  # a measured pass over 3x its size's median is a stall of the machine (see pool_stalls)


def poisson_arrivals(rate_per_s: float, requests: int, seed: int) -> np.ndarray:
    """Arrival times in seconds from 0: cumulative exponential gaps of mean 1 / rate."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, requests)
    return np.cumsum(gaps) - gaps[0]


@dataclass
class ServiceTimes:
    """Seconds per pass for each batch size: ``hot`` for passes run back to back (a busy worker), ``idle`` for
    passes a waiting worker starts (thread pools asleep, caches cooled), and ``wakeup``: a waiting worker's
    hand-off, from the request that completes its batch being queued to the batch being taken. ``stalls``:
    the excess seconds of the passes that stalled (:func:`pool_stalls`), of ``passes`` measured in all."""

    hot: dict[int, np.ndarray]
    idle: dict[int, np.ndarray]
    wakeup: np.ndarray
    stalls: np.ndarray = field(default_factory=lambda: np.zeros(0))
    passes: int = 0

    @property
    def stall_fraction(self) -> float:
        """The share of passes that stall: each simulated pass stalls with this probability."""
        return len(self.stalls) / self.passes if self.passes else 0.0


def pool_stalls(times: ServiceTimes) -> ServiceTimes:
    """``times`` with the machine's stalls taken out of each size's samples and pooled: a pass longer than
    STALL_FACTOR x the median of its size and kind leaves its size's sample, and its excess over that median
    joins ``stalls`` (a simulated stall adds it to an ordinary draw). A
    stall (a VM's hiccup: another tenant, page reclaim) belongs to the machine, not to the batch size it
    happened to hit: left in a sample of a few dozen passes of one size, the simulation would draw it for
    one pass in a few dozen of that size (one 15 ms stall among 60 passes of B=3 made every setting that
    runs 3-row batches miss a 12 ms p99 budget) rather than one in the thousands the machine showed."""
    stalls: list[float] = []
    count = 0

    def typical(t: np.ndarray) -> np.ndarray:
        nonlocal count
        count += len(t)
        if not len(t):
            return t
        median = float(np.median(t))
        over = t > STALL_FACTOR * median
        stalls.extend((t[over] - median).tolist())
        return t[~over]

    return ServiceTimes({b: typical(t) for b, t in times.hot.items()}, {b: typical(t) for b, t in times.idle.items()},
                        times.wakeup, np.concatenate([times.stalls, stalls]), times.passes + count)


def service_times(forward: Callable[[np.ndarray], Any], rows: int, max_batch: int, samples: int,
                  seed: int = 0, on_size: Callable[[int], None] | None = None, rounds: int = 4,
                  idle_s: float | None = None) -> ServiceTimes:
    """The pass times of each batch size 1..max_batch, measured through :func:`serve` itself (the same
    threads, locks, gathering and bookkeeping as the real queue), ``samples`` of each kind per size, in
    ``rounds`` interleaved rounds over the sizes (a slow spell of the machine then hits every size a little),
    after three warm-up passes per size:

    - *idle*: groups of b requests, ``idle_s`` apart (the gaps of the load to be simulated; default 2.5
      passes; at least 1.5), so that the worker waits for each: the worker's wake-up (the group's last
      request queued -> batch taken) and the pass (taken -> ended);
    - *hot*: many requests queued at once: passes back to back, each timed from the end of the one before.
    """
    hot: dict[int, list[float]] = {b: [] for b in range(1, max_batch + 1)}
    idle: dict[int, list[float]] = {b: [] for b in range(1, max_batch + 1)}
    wake: list[float] = []
    per_round = max(2, -(-samples // rounds))
    rng = np.random.default_rng(seed)
    for b in hot:  # first passes at a new size allocate and fault pages in: not what a warm server pays
        for _ in range(3):
            forward(rng.choice(rows, b, replace=b > rows))
    for r in range(rounds):
        for b in hot:
            if on_size and r == 0:
                on_size(b)
            # How long the worker idles changes what its next pass costs (caches, clocks): as long as the
            # load's own gaps, when known, but long enough that it does wait for every group.
            pass_s = float(np.median(idle[b])) if idle[b] else 1e-3
            gap = 2.5 * pass_s if idle_s is None else max(idle_s, 1.5 * pass_s)
            # b - 1 requests together, the last a third of the gap later: the producer sleeps before queuing
            # it, so the worker's wake-up is not held up by a producer busy queuing (the GIL's switch interval)
            groups = np.arange(per_round + 1)[:, None] * gap + np.r_[np.zeros(b - 1), gap / 3][None, :]
            alone = serve(forward, rows, groups.ravel(), b, 1.0, seed + r)
            assert alone.passes is not None
            # only passes whose worker was waiting when their last request came (a slow pass can back the
            # next group up behind it: that wait is queueing, not a wake-up)
            waited = np.r_[True, alone.passes[:-1, 2] < alone.passes[1:, 0]] & (np.array(alone.batches) == b)
            full = alone.passes[waited]
            wake += (full[:, 1] - full[:, 0]).tolist()
            idle[b] += (full[:, 2] - full[:, 1]).tolist()
            # Requests 20 us apart (the producer sleeps between them, leaving the GIL to the worker), so many
            # that the queue holds a full batch whenever a pass ends
            busy = serve(forward, rows, np.arange(b * (per_round + 2)) * 2e-5, b, 0.0, seed + r)
            assert busy.passes is not None
            ends, sizes = busy.passes[:, 2], np.array(busy.batches)
            hot[b] += [float(e - d) for e, d, n in zip(ends[2:], ends[1:], sizes[2:], strict=False) if n == b]
    return pool_stalls(ServiceTimes({b: np.array(t) for b, t in hot.items()}, {b: np.array(t) for b, t in idle.items()},
                                    np.array(wake)))


def resample(service: ServiceTimes, rng: np.random.Generator) -> ServiceTimes:
    """A bootstrap replicate: every sample set drawn again with replacement, to its own size."""
    def again(t: np.ndarray) -> np.ndarray:
        return rng.choice(t, len(t))

    # as many stalls as passes drawn again would hold: a binomial count of the pooled ones
    stalled = rng.binomial(service.passes, service.stall_fraction) if len(service.stalls) else 0
    return ServiceTimes({b: again(t) for b, t in service.hot.items()}, {b: again(t) for b, t in service.idle.items()},
                        again(service.wakeup), rng.choice(service.stalls, stalled) if stalled else np.zeros(0),
                        service.passes)


@dataclass
class Served:
    """Latencies (s) of every request and the size of every pass, in order; the span from the first arrival
    to the last completion (s)."""

    latencies: np.ndarray
    batches: list[int]
    span_s: float
    arrivals: np.ndarray | None = None  # a real run: when each request was actually queued (s from the start)
    passes: np.ndarray | None = None  # a real run, per pass: (its last request queued, taken, ended), s
    arrival_span_s: float = 0.0  # from the first arrival to the last

    def summary(self, rate_per_s: float) -> dict[str, Any]:
        """p50 and p99 latency (ms) with their 95 % order-statistic intervals, throughput (requests/s),
        mean batch size, and ``overloaded`` when the queue did not keep up (throughput under 95 % of the rate
        the arrivals had)."""
        ms = self.latencies * 1e3
        throughput = len(ms) / self.span_s if self.span_s > 0 else float("inf")
        # against the rate the arrivals really had (a few hundred Poisson draws stray by several per cent)
        offered = (len(ms) - 1) / self.arrival_span_s if self.arrival_span_s > 0 else rate_per_s
        return {"quantiles_ms": np.quantile(ms, QUANTILES).tolist(),
                "p50_ms": float(np.quantile(ms, 0.5)), "p50_ci_ms": list(quantile_ci(ms, 0.5)),
                "p99_ms": float(np.quantile(ms, 0.99)), "p99_ci_ms": list(quantile_ci(ms, 0.99)),
                "throughput_per_s": throughput, "mean_batch": float(np.mean(self.batches)),
                "overloaded": bool(throughput < 0.95 * offered)}


def observed_times(served: Served, max_batch: int, max_delay_s: float) -> ServiceTimes:
    """The service times a real run (:func:`serve`) paid, sorted as :func:`simulate` draws them: a pass the
    worker went straight on to (its batch had closed, by size or by deadline, before the pass before it
    ended) is *hot*, timed from that pass's end to its own; any other is *idle*: the worker's wake-up (from
    the moment the batch closed to its being taken) and the pass (taken -> ended). Sizes that did not occur
    have no samples."""
    assert served.arrivals is not None and served.passes is not None
    arrivals, passes = served.arrivals, served.passes
    hot: dict[int, list[float]] = {b: [] for b in range(1, max_batch + 1)}
    idle: dict[int, list[float]] = {b: [] for b in range(1, max_batch + 1)}
    wake: list[float] = []
    first, free_at = 0, -np.inf
    for (_, taken, ended), b in zip(passes, served.batches, strict=False):
        full_at = arrivals[first + max_batch - 1] if first + max_batch - 1 < len(arrivals) else np.inf
        close = max(free_at, arrivals[first], min(arrivals[first] + max_delay_s, full_at))
        if close > free_at:
            wake.append(float(taken - close))
            idle[b].append(float(ended - taken))
        else:
            hot[b].append(float(ended - free_at))
        first, free_at = first + b, ended
    return ServiceTimes({b: np.array(t) for b, t in hot.items()}, {b: np.array(t) for b, t in idle.items()},
                        np.array(wake))


def simulate(arrivals: np.ndarray, service: ServiceTimes, max_batch: int, max_delay_s: float, seed: int = 0) -> Served:
    """The policy replayed on ``arrivals`` (s, sorted). A pass that a busy worker goes straight on to draws
    its time from ``service.hot[b]``; one that a waiting worker starts (it was idle when the batch closed)
    pays a draw from ``service.wakeup`` and one from ``service.idle[b]``. Either then stalls with probability
    ``service.stall_fraction``, for a draw from ``service.stalls``."""
    rng = np.random.default_rng(seed)
    stall_fraction = service.stall_fraction
    n = len(arrivals)
    latencies = np.empty(n)
    batches = []
    free_at, i, end = -np.inf, 0, 0.0  # the worker waits from the start
    while i < n:
        start = max(free_at, arrivals[i])
        full_at = arrivals[i + max_batch - 1] if i + max_batch - 1 < n else np.inf
        close = max(start, min(arrivals[i] + max_delay_s, full_at))
        j = min(i + max_batch, bisect.bisect_right(arrivals, close, lo=i))
        if close > free_at:
            end = close + float(rng.choice(service.wakeup)) + float(rng.choice(service.idle[j - i]))
        else:
            end = close + float(rng.choice(service.hot[j - i]))
        if stall_fraction and rng.random() < stall_fraction:
            end += float(rng.choice(service.stalls))
        latencies[i:j] = end - arrivals[i:j]
        batches.append(j - i)
        free_at, i = end, j
    return Served(latencies, batches, end - arrivals[0], arrival_span_s=float(arrivals[-1] - arrivals[0]))


def serve(forward: Callable[[np.ndarray], Any], rows: int, arrivals: np.ndarray, max_batch: int,
          max_delay_s: float, seed: int = 0) -> Served:
    """The policy run for real: a producer thread releases request k at ``arrivals[k]`` (s from the start;
    row k mod rows of the data), a worker thread batches them and runs ``forward`` on their rows."""
    queue: collections.deque[tuple[int, float]] = collections.deque()
    cond = threading.Condition()
    n = len(arrivals)
    latencies = np.empty(n)
    batches: list[int] = []
    passes: list[tuple[float, float, float]] = []
    finished = threading.Event()
    rows_of = np.random.default_rng(seed).integers(0, rows, n)
    failure: list[BaseException] = []

    queued = np.empty(n)

    def produce() -> None:
        for k, at in enumerate(arrivals):
            # Sleep, never spin: a spinning producer takes a core from the forward passes it is timing. A
            # late wake-up delays the request; its latency and its arrival are both taken when it is queued.
            if (wait := t_start + at - time.perf_counter()) > 0:
                time.sleep(wait)
            with cond:
                queued[k] = time.perf_counter()
                queue.append((k, queued[k]))
                cond.notify()

    def work() -> None:
        done = 0
        try:
            while done < n:
                with cond:
                    while not queue:
                        cond.wait()
                    deadline = queue[0][1] + max_delay_s
                    while len(queue) < max_batch and (left := deadline - time.perf_counter()) > 0:
                        cond.wait(left)
                    taken = [queue.popleft() for _ in range(min(max_batch, len(queue)))]
                    t_taken = time.perf_counter()
                forward(rows_of[[k for k, _ in taken]])
                t_end = time.perf_counter()
                for k, t_arrival in taken:
                    latencies[k] = t_end - t_arrival
                batches.append(len(taken))
                passes.append((max(t for _, t in taken), t_taken, t_end))
                done += len(taken)
        except BaseException as e:  # the producer still ends; the failure is raised in the caller's thread
            failure.append(e)
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="batchcore-serve-worker", daemon=True)
    producer = threading.Thread(target=produce, name="batchcore-serve-producer", daemon=True)
    t_start = time.perf_counter() + 0.01  # both threads started before the first arrival
    worker.start()
    producer.start()
    producer.join()
    finished.wait()
    worker.join()
    if failure:
        raise failure[0]
    return Served(latencies, batches, float(np.max(queued + latencies) - queued[0]), queued - t_start,
                  np.array(passes).reshape(-1, 3) - t_start, float(queued[-1] - queued[0]))
