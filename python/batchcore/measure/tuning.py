"""``bc.tune()``: the native GEMM's scheduling, chosen by measurement on the machine it runs on.

The GEMM's free parameters (``cpp/include/batchcore/gemm_tuning.hpp``) decide which worker computes which
tile and when: how much of the L2 a row tile of the input may fill, whether workers walk row tiles or
weight panels first, and how much work a thread must be given before another is woken (the small-batch
path). **They never change a bit**: each output element is one dot product in its order, computed whole in
one tile (a test runs every candidate on adversarial data and compares bits). Their best values depend on
the cache sizes, the cores and the memory, so they are measured here, not written in for the machine the
code was developed on.

The search is short (a few seconds): first the tile share and the traversal, each candidate timed on a
few large-batch layers in interleaved rounds (the median of each); then the thread threshold on small
batches. A candidate replaces the defaults only where it is at least :data:`MARGIN` faster (geometric
mean over the workloads) in the grid and again head to head; otherwise the defaults stay. The result is
cached per machine like the probes (``$BATCHCORE_CACHE_DIR``; keyed by the CPU's kind, the host, the
thread count, the instruction set and the core's build), applied at the first native backend of a
process, and recorded in its settings (``settings()["gemm_tuning"]``). ``BATCHCORE_TUNE=0`` keeps the
defaults without measuring.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .. import _core, checks
from .probes import store

TRAVERSALS = ("by-reads", "row-tiles", "panels")  # as gemm_tuning.hpp's Traversal, in its numbering
TILE_SHARES = (2, 3, 4, 6)  # eighths of the L2 a row tile may fill
MIN_WORK = (14, 16, 18, 20, 22)  # log2 of the flops a worker must get before another thread is woken
MARGIN = 0.05  # a candidate must be this much faster than the defaults, twice, to replace them

# (rows M, inputs K, outputs N) of the layers each stage times
LARGE = ((256, 1024, 1024), (64, 4096, 1024), (1024, 512, 512))
SMALL = ((1, 1024, 1024), (4, 1024, 1024), (8, 512, 512), (2, 4096, 1024))


@dataclass(frozen=True)
class Tuning:
    """The GEMM's scheduling: ``tile_l2_eighths`` (1..8), ``traversal`` (one of :data:`TRAVERSALS`),
    ``min_work_log2`` (12..26); where it came from (``source``: "defaults", "BATCHCORE_TUNE=0", "tuned"
    or the cache file it was read from), and for a tuned one: ``gain`` (the defaults' time over its own,
    geometric mean over the workloads timed), ``threads``, ``machine``, ``measured_at``."""

    tile_l2_eighths: int = 3
    traversal: str = "by-reads"
    min_work_log2: int = 18
    source: str = "defaults"
    gain: float | None = None
    threads: int | None = None
    machine: str | None = None
    measured_at: str | None = None

    def knobs(self) -> tuple[int, int, int]:
        """The three values as the core takes them."""
        return self.tile_l2_eighths, TRAVERSALS.index(self.traversal), self.min_work_log2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULTS = Tuning()


def apply(tuning: Tuning) -> None:
    """Sets the core's GEMM scheduling to ``tuning`` (every later GEMM of the process uses it)."""
    _core.set_gemm_tuning(*tuning.knobs())


def in_force() -> Tuning:
    """What the core uses now (its source as last applied by :func:`tune`, else "defaults")."""
    k = _core.gemm_tuning()
    now = Tuning(k["tile_l2_eighths"], TRAVERSALS[k["traversal"]], k["min_work_log2"])
    applied = _APPLIED.get("tuning")
    return applied if applied is not None and applied.knobs() == now.knobs() else now


_APPLIED: dict[str, Tuning] = {}


# -- timing ------------------------------------------------------------------------------------------------

Workload = tuple[int, int, int]
TimeOf = Callable[[Tuning, Workload], float]


def _layer_timer(threads: int) -> TimeOf:
    """Seconds per call of the native seq layer (M, K, N) under a tuning: calls repeated until the block
    lasts 10 ms, after 2 ms of untimed calls (threads woken, caches warm)."""
    from .orders import run_options

    options = run_options("seq", threads=threads)
    cores: dict[tuple[int, int], Any] = {}
    inputs: dict[Workload, np.ndarray] = {}

    def time_of(tuning: Tuning, w: Workload) -> float:
        M, K, N = w
        if (K, N) not in cores:  # the core's own model of one layer (the measure layer sits below the backends)
            rng = np.random.default_rng(K + N)
            cores[(K, N)] = _core.Model(K)
            cores[(K, N)].add_linear(rng.standard_normal((N, K)).astype(np.float32) / np.float32(np.sqrt(K)),
                                     np.zeros(N, np.float32))
        if w not in inputs:
            inputs[w] = np.random.default_rng(M).standard_normal((M, K)).astype(np.float32)
        core, x = cores[(K, N)], inputs[w]
        apply(tuning)
        for minimum in (0.002, 0.010):  # untimed, then timed: the last block's time is the one returned
            calls, t0 = 0, time.perf_counter()
            while True:
                core.run(x, options)
                calls += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= minimum:
                    break
        return elapsed / calls

    return time_of


def _geomean(xs: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def _scores(time_of: TimeOf, candidates: list[Tuning], base: int, workloads: Sequence[Workload],
            rounds: int) -> list[float]:
    """Each candidate's speed over ``candidates[base]``'s: timed in ``rounds`` interleaved rounds (every
    candidate on every workload, then again), the median per (candidate, workload), the geometric mean over
    the workloads of base's median over the candidate's."""
    samples: dict[tuple[int, Workload], list[float]] = {}
    for _ in range(rounds):
        for i, c in enumerate(candidates):
            for w in workloads:
                samples.setdefault((i, w), []).append(time_of(c, w))
    median = {key: statistics.median(v) for key, v in samples.items()}
    return [_geomean([median[(base, w)] / median[(i, w)] for w in workloads]) for i in range(len(candidates))]


def _stage(time_of: TimeOf, base: Tuning, candidates: list[Tuning], workloads: Sequence[Workload],
           rounds: int) -> tuple[Tuning, float]:
    """The fastest of ``candidates`` (``base`` among them) on ``workloads``, and its gain over ``base``. The
    winner of the grid must then beat ``base`` again, head to head in twice the rounds, by :data:`MARGIN`
    (a machine's noise picks a winner among equals; it rarely picks the same one twice by that much);
    otherwise ``base`` stays."""
    scores = _scores(time_of, candidates, candidates.index(base), workloads, rounds)
    best = max(range(len(candidates)), key=lambda i: scores[i])
    if candidates[best] == base or scores[best] < 1 + MARGIN:
        return base, 1.0
    again = _scores(time_of, [base, candidates[best]], 0, workloads, 2 * rounds)[1]
    return (candidates[best], again) if again >= 1 + MARGIN else (base, 1.0)


def search(time_of: TimeOf, rounds: int = 3, large: Sequence[Workload] = LARGE,
           small: Sequence[Workload] = SMALL) -> Tuning:
    """The tuning ``time_of`` finds fastest (see the module's docstring): ``time_of(tuning, (M, K, N))`` is the
    seconds of one layer under that tuning (tests plant one)."""
    grid = [replace(DEFAULTS, tile_l2_eighths=e, traversal=t) for e in TILE_SHARES for t in TRAVERSALS]
    first, gain1 = _stage(time_of, DEFAULTS, grid, large, rounds)
    second, gain2 = _stage(time_of, first, [replace(first, min_work_log2=m) for m in MIN_WORK], small, rounds)
    return replace(second, source="tuned", gain=round(gain1 * gain2, 4))


# -- the cache -----------------------------------------------------------------------------------------------

def _cache_path(threads: int) -> tuple[str, str]:
    from .probes import cpu_cache_key, key_file

    key = cpu_cache_key(threads, _core.simd_level())
    return key_file(key, "tuning"), key["machine"]


def _load(path: str) -> Tuning | None:
    try:
        with open(path) as f:
            d = json.load(f)
        found = Tuning(**{**d, "source": path})
        found.knobs()  # a traversal not in the list: damaged
        return found
    except (OSError, ValueError, TypeError):
        return None


def tune(refresh: bool = False, threads: int | None = None, rounds: int = 3) -> Tuning:
    """Measure the native GEMM's scheduling on this machine (a few seconds), cache it and put it in force;
    without ``refresh``, a cached result for this machine, thread count and build is read instead. The
    bits of every order are the same under any tuning; only the speed changes. ``threads``: the thread
    count timed (default: the core's, all cores)."""
    checks.flag(refresh, "refresh")
    threads = checks.threads(threads) or _core.default_threads()
    rounds = checks.positive_int(rounds, "rounds", maximum=100)
    path, machine = _cache_path(threads)
    found = None if refresh else _load(path)
    if found is None:
        before = in_force()
        try:
            found = search(_layer_timer(threads), rounds)
        finally:
            apply(before)
        found = replace(found, threads=threads, machine=machine,
                        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        store(path, found.to_dict(), "GEMM tuning")
    apply(found)
    _APPLIED["tuning"] = found
    return found


@functools.cache
def _at_first_use(setting: str) -> Tuning:
    if setting == "0":
        tuning = replace(DEFAULTS, source="BATCHCORE_TUNE=0")
        apply(tuning)
        _APPLIED["tuning"] = tuning
        return tuning
    return tune()


def ensure_tuned() -> Tuning:
    """The tuning in force for this process: at its first call, read from the cache or measured
    (:func:`tune`), or the defaults when ``BATCHCORE_TUNE=0``; later calls return what is in force (a
    later :func:`tune` included)."""
    setting = os.environ.get("BATCHCORE_TUNE", "1").strip()
    if setting not in ("0", "1"):
        from ..errors import ArgumentError

        raise ArgumentError(f"BATCHCORE_TUNE must be 0 (the defaults) or 1 (tuned on this machine), got {setting!r}")
    _at_first_use(setting)
    return in_force()
