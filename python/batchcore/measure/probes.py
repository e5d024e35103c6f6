"""Peak probes: what this machine can do at most, to put a sweep's GFLOP/s in proportion.

``bc.probe()`` measures, on the CPU, the fma peak (a register-resident fma loop on every thread), the
effective core clock (a chain of dependent integer adds, one cycle each, when that is consistent
with the fma width; else the clock is reported unknown, with the reason) and the memory bandwidth
(STREAM's triad over arrays 4x the last-level cache) and the last-level cache's (the same over a
quarter of it); on a GPU, the fma peak of a register-resident
kernel and the bandwidth of a device-to-device copy. Results are cached per machine on disk (the
probes take a few seconds): in ``$BATCHCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/batchcore``, else
``~/.cache/batchcore``; ``refresh=True`` measures again and keeps the best of the measurements (a
peak measured while the machine was busy is lower than the device's; a sweep measures again when a point
runs over a cached peak).

The roofline of a forward pass of B rows is ``min(peak, bandwidth x intensity)`` with intensity = FLOPs
/ :meth:`Model.min_traffic_bytes` (flop per byte), and the cache's bandwidth when those bytes fit in half
the last-level cache (a hot pass finds them there): below the ridge point ``peak / bandwidth`` a pass is
bound by memory, above it by arithmetic. A fraction over 1 means the data came from a nearer cache
still (L1/L2).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import platform
import warnings
from dataclasses import asdict, dataclass, replace

from .. import _core, checks, devices
from ..errors import ArgumentError, ResultFileError
from ..info import last_level_cache_bytes


@dataclass(frozen=True)
class Probe:
    """Measured ceilings of one device. Rates in GFLOP/s and GB/s (1e9), clock in GHz, sizes in bytes."""

    device: str                 # "cpu" or "cuda:N"
    threads: int | None         # CPU threads that ran the probes (None on a GPU)
    simd: str | None            # CPU instruction set of the fma and triad loops
    peak_gflops: float          # fma peak, all threads (CPU) or the whole device (GPU)
    bandwidth_gbs: float        # memory: triad over 4x the last-level cache (CPU, 12 bytes per element),
                                # device copy (GPU, read + write)
    cache_bandwidth_gbs: float | None  # CPU: triad over arrays of a quarter of the last-level cache
    clock_ghz: float | None     # CPU: effective clock while every probed thread is busy; None: unknown
    last_level_cache_bytes: int | None
    machine: str                # what the cache is keyed on: host, CPU or GPU model
    measured_at: str            # ISO 8601, UTC
    source: str = "measured"    # "measured", or the cache file it was read from
    clock_note: str | None = None  # why clock_ghz is None, when it is
    best_of: int = 1            # measurements whose best ceilings these are (load only ever lowers one)

    @property
    def flops_per_cycle(self) -> float | None:
        """fma peak per thread and cycle (e.g. 32 for a core with one 512-bit or two 256-bit fma pipes)."""
        if self.clock_ghz is None or not self.threads:
            return None
        return self.peak_gflops / (self.threads * self.clock_ghz)

    @property
    def ridge_intensity(self) -> float:
        """The arithmetic intensity (flop/byte) above which a pass can be compute bound (from memory)."""
        return self.peak_gflops / self.bandwidth_gbs

    def roofline_gflops(self, intensity: float, working_set_bytes: int | None = None) -> float:
        """The attainable GFLOP/s at ``intensity`` flop/byte: min(peak, bandwidth x intensity), with the
        last-level cache's bandwidth when a working set of ``working_set_bytes`` fits in half of it
        (hot passes find it there), else the memory's."""
        return min(self.peak_gflops, self.bandwidth_for(working_set_bytes) * intensity)

    def bandwidth_for(self, working_set_bytes: int | None) -> float:
        """The bandwidth a working set of this size streams at: the cache's when it fits in half the
        last-level cache, else the memory's (GB/s)."""
        if (working_set_bytes is not None and self.cache_bandwidth_gbs and self.last_level_cache_bytes
                and working_set_bytes <= self.last_level_cache_bytes // 2):
            return self.cache_bandwidth_gbs
        return self.bandwidth_gbs

    def to_dict(self) -> dict:
        return {**asdict(self), "flops_per_cycle": self.flops_per_cycle, "ridge_intensity": self.ridge_intensity}


def cache_dir() -> str:
    """Where probes are cached (see the module's docstring)."""
    if os.environ.get("BATCHCORE_CACHE_DIR"):
        return os.environ["BATCHCORE_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "batchcore")


def _cpu_identity() -> str:
    from ..info import cpu_model

    return f"{platform.node()} | {cpu_model()} | {os.cpu_count()} cpus"


# A core retires a power of two of fp32 flop per cycle: 2 (one scalar fma) ... 64 (two 512-bit fma pipes).
FMA_WIDTHS = tuple(2**i for i in range(1, 8))


def derive_clock(peak_gflops: float, threads: int, add_rate_ghz: float) -> tuple[float | None, str | None]:
    """The clock (GHz) from a dependent-add chain's rate, when it is consistent with the fma peak: peak /
    (threads x rate) must be within 15 % of a whole fma width (a power of two from 2 to 128 flop per
    cycle). Else ``(None, reason)``: some cores run dependent adds faster than one a cycle (Intel's Golden
    Cove family executes add-immediate chains at rename), and a number derived from them would be wrong."""
    if not (add_rate_ghz > 0 and peak_gflops > 0 and threads >= 1):
        return None, "the dependent-add chain or the fma peak did not run"
    fpc = peak_gflops / (threads * add_rate_ghz)
    nearest = min(FMA_WIDTHS, key=lambda w: abs(w - fpc))
    if abs(fpc - nearest) / nearest <= 0.15:
        return add_rate_ghz, None
    return None, (f"unknown: a dependent-add chain ran at {add_rate_ghz:.2f} G adds/s per thread, which with the "
                  f"fma peak gives {fpc:.1f} flop/cycle, no whole fma width; this core does not run one "
                  "dependent add per cycle, so its clock cannot be derived from them")


def key_file(key: dict, kind: str = "probe") -> str:
    """The cache file of a ``kind`` of measurement ("probe", "tuning") under ``key``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"{kind}-{key['device'].replace(':', '')}-{digest}.json")


def cpu_cache_key(threads: int | None, simd: str) -> dict:
    """What a CPU measurement is valid for: the same machine and build only (the CPU's kind: family, model,
    stepping, flags; the host; the core's compiler and flags); a cache from another machine sharing this
    home is never read."""
    from ..info import _version, cpu_identity

    return {"device": "cpu", "machine": _cpu_identity(), "cpu": cpu_identity(), "threads": threads, "simd": simd,
            "batchcore": _version(), "build": _core.build_info()}


def _load(path: str) -> Probe | None:
    try:
        with open(path) as f:
            d = json.load(f)
        d.pop("flops_per_cycle", None)
        d.pop("ridge_intensity", None)
        d["source"] = path
        return Probe(**d)
    except (OSError, ValueError, TypeError):
        return None  # absent or unreadable: measure again


def store(path: str, record: dict, what: str = "probe") -> None:
    """Writes a measurement's record to the cache atomically; a cache that cannot be written is a warning
    (the measurement is made again next time), not an error."""
    from ..files import atomic_write

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, json.dumps(record, indent=1))
    except (OSError, ResultFileError) as e:
        warnings.warn(f"batchcore: could not cache the {what} in {path} ({e}); it will be measured again",
                      stacklevel=3)


def best(cached: Probe, fresh: Probe) -> Probe:
    """The ceilings of two measurements of the same device: each the higher one (a busy machine only ever
    lowers a measured peak or bandwidth, so the best is the nearest to the device's own), the clock with the
    peak it came with; ``best_of`` counts the measurements, ``measured_at`` is the latest."""
    top = fresh if fresh.peak_gflops >= cached.peak_gflops else cached
    caches = [b for b in (cached.cache_bandwidth_gbs, fresh.cache_bandwidth_gbs) if b is not None]
    return replace(fresh, peak_gflops=top.peak_gflops, clock_ghz=top.clock_ghz, clock_note=top.clock_note,
                   bandwidth_gbs=max(cached.bandwidth_gbs, fresh.bandwidth_gbs),
                   cache_bandwidth_gbs=max(caches) if caches else None, best_of=cached.best_of + 1)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _probe_cpu(threads: int, simd: str, machine: str) -> Probe:
    llc = last_level_cache_bytes()
    memory = max(4 * (llc or 0), 64 << 20) // 12  # elements per array: 3 arrays, 4x the cache in all
    peak = _core.probe_fma_peak(threads, simd, 0.4)
    clock, note = derive_clock(peak, threads, _core.probe_clock_ghz(threads, 0.2))
    return Probe(
        device="cpu", threads=threads, simd=simd, peak_gflops=peak,
        bandwidth_gbs=_core.probe_triad(threads, memory, 10, simd)["gbytes_per_s"],
        cache_bandwidth_gbs=_core.probe_triad(threads, llc // 48, 200, simd)["gbytes_per_s"] if llc else None,
        clock_ghz=clock, clock_note=note,
        last_level_cache_bytes=llc, machine=machine, measured_at=_now())


def _probe_gpu(index: int, machine: str) -> Probe:
    from ..info import cuda_module

    cu = cuda_module()
    return Probe(
        device=f"cuda:{index}", threads=None, simd=None,
        peak_gflops=cu.probe_fma_peak(index), bandwidth_gbs=cu.probe_copy(index), cache_bandwidth_gbs=None,
        clock_ghz=None, last_level_cache_bytes=cu.l2_cache_bytes(index), machine=machine, measured_at=_now())


@functools.cache
def _probe_cached(dev: devices.Device, threads: int | None, refresh: bool, folder: str) -> Probe:
    # `folder` (the cache directory) is part of the key: a probe read from one cache is not another's.
    from ..info import _version, gpus

    if dev.kind == "cuda":
        from ..info import cuda_module

        cu = cuda_module()
        machine = f"{platform.node()} | {gpus()[dev.index]}"
        key = {"device": str(dev), "machine": machine, "batchcore": _version(), "build": cu.build_info()}
        measure = lambda: _probe_gpu(dev.index, machine)  # noqa: E731
    else:
        simd = _core.simd_level()
        key = cpu_cache_key(threads, simd)
        cpu_threads = threads or _core.default_threads()
        measure = lambda: _probe_cpu(cpu_threads, simd, key["machine"])  # noqa: E731
    path = key_file(key)
    cached = _load(path)
    if cached is not None and not refresh:
        return cached
    probe = measure() if cached is None else best(cached, measure())
    store(path, probe.to_dict())
    return probe


def probe(device: str = "cpu", threads: int | None = None, refresh: bool = False) -> Probe:
    """This machine's measured ceilings on ``device`` ("cpu", "cuda", "cuda:N"): see :class:`Probe`.

    threads: CPU threads the probes run on (default: all cores, the core's default thread count).
    refresh: measure again instead of reading the cache; the cache then keeps, per ceiling, the best of
    the measurements (``best_of`` counts them): a busy machine lowers a measured peak, never raises it.
    Cached in memory for the process and on disk per machine (:func:`cache_dir`).
    """
    threads = checks.threads(threads)
    checks.flag(refresh, "refresh")
    dev = devices.parse(device)
    if dev.kind == "cuda":
        if threads is not None:
            raise ArgumentError("threads applies to the CPU probe only")
        threads = None
    else:
        threads = threads or _core.default_threads()
    if refresh:
        _probe_cached.cache_clear()
    return _probe_cached(dev, threads, refresh, cache_dir())

