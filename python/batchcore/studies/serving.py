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
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..timing import quantile_ci

QUANTILES = np.linspace(0.01, 0.99, 99)  # the latency distribution kept with a summary, for plots


def poisson_arrivals(rate_per_s: float, requests: int, seed: int) -> np.ndarray:
    """Arrival times in seconds from 0: cumulative exponential gaps of mean 1 / rate."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, requests)
    return np.cumsum(gaps) - gaps[0]


def service_times(forward: Callable[[np.ndarray], Any], rows: int, max_batch: int, samples: int,
                  seed: int = 0, on_size: Callable[[int], None] | None = None) -> dict[int, np.ndarray]:
    """Seconds of ``forward`` on batches of each size 1..max_batch (``samples`` passes each, after three
    warm-up passes), each batch of rows drawn at random: the time the server will spend per pass."""
    rng = np.random.default_rng(seed)
    out = {}
    for b in range(1, max_batch + 1):
        if on_size:
            on_size(b)
        idx = [rng.choice(rows, b, replace=b > rows) for _ in range(samples + 3)]
        times = []
        for k, i in enumerate(idx):
            t0 = time.perf_counter()
            forward(i)
            if k >= 3:
                times.append(time.perf_counter() - t0)
        out[b] = np.array(times)
    return out


def wakeup_times(requests: int = 200, gap_s: float = 0.002) -> np.ndarray:
    """Seconds from a request's arrival to the end of an empty pass, for requests far apart (the worker
    always idle): what the real queue's hand-off between threads costs a pass that a waiting worker starts."""
    arrivals = np.arange(requests) * gap_s
    return serve(lambda idx: None, 1, arrivals, max_batch=1, max_delay_s=0.0).latencies


@dataclass
class Served:
    """Latencies (s) of every request and the size of every pass, in order; the span from the first arrival
    to the last completion (s)."""

    latencies: np.ndarray
    batches: list[int]
    span_s: float
    arrivals: np.ndarray | None = None  # a real run: when each request was actually queued (s from the start)

    def summary(self, rate_per_s: float) -> dict[str, Any]:
        """p50 and p99 latency (ms) with their 95 % order-statistic intervals, throughput (requests/s),
        mean batch size, and ``overloaded`` when the queue did not keep up (throughput under 95 % of the rate)."""
        ms = self.latencies * 1e3
        throughput = len(ms) / self.span_s if self.span_s > 0 else float("inf")
        return {"quantiles_ms": np.quantile(ms, QUANTILES).tolist(),
                "p50_ms": float(np.quantile(ms, 0.5)), "p50_ci_ms": list(quantile_ci(ms, 0.5)),
                "p99_ms": float(np.quantile(ms, 0.99)), "p99_ci_ms": list(quantile_ci(ms, 0.99)),
                "throughput_per_s": throughput, "mean_batch": float(np.mean(self.batches)),
                "overloaded": bool(throughput < 0.95 * rate_per_s)}


def simulate(arrivals: np.ndarray, service: dict[int, np.ndarray], max_batch: int, max_delay_s: float,
             seed: int = 0, wakeup: np.ndarray | None = None) -> Served:
    """The policy replayed on ``arrivals`` (s, sorted), each pass's time drawn from ``service[b]``; a pass
    that a waiting worker starts (it was idle when the batch closed) first pays a draw from ``wakeup`` (s):
    the time a real worker thread takes to wake and take its batch (:func:`wakeup_times`)."""
    rng = np.random.default_rng(seed)
    n = len(arrivals)
    latencies = np.empty(n)
    batches = []
    free_at, i, end = -np.inf, 0, 0.0  # the worker waits from the start
    while i < n:
        start = max(free_at, arrivals[i])
        full_at = arrivals[i + max_batch - 1] if i + max_batch - 1 < n else np.inf
        close = max(start, min(arrivals[i] + max_delay_s, full_at))
        j = min(i + max_batch, bisect.bisect_right(arrivals, close, lo=i))
        woke = float(rng.choice(wakeup)) if wakeup is not None and close > free_at else 0.0
        end = close + woke + float(rng.choice(service[j - i]))
        latencies[i:j] = end - arrivals[i:j]
        batches.append(j - i)
        free_at, i = end, j
    return Served(latencies, batches, end - arrivals[0])


def serve(forward: Callable[[np.ndarray], Any], rows: int, arrivals: np.ndarray, max_batch: int,
          max_delay_s: float, seed: int = 0) -> Served:
    """The policy run for real: a producer thread releases request k at ``arrivals[k]`` (s from the start;
    row k mod rows of the data), a worker thread batches them and runs ``forward`` on their rows."""
    queue: collections.deque[tuple[int, float]] = collections.deque()
    cond = threading.Condition()
    n = len(arrivals)
    latencies = np.empty(n)
    batches: list[int] = []
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
                forward(rows_of[[k for k, _ in taken]])
                t_end = time.perf_counter()
                for k, t_arrival in taken:
                    latencies[k] = t_end - t_arrival
                batches.append(len(taken))
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
    return Served(latencies, batches, float(np.max(queued + latencies) - queued[0]), queued - t_start)
