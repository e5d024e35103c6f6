"""Peak probes: what this machine can do at most, to put measured GFLOP/s in proportion."""

from __future__ import annotations

import functools

from . import _core


@functools.lru_cache(maxsize=None)
def probe_peak(threads: int | None = None, simd: str = "auto", seconds: float = 0.5) -> dict:
    """The CPU's fma peak as this build reaches it: a register-resident loop of 24 independent fma chains
    on every thread (``threads=None``: all cores), best of 3 timed runs of about ``seconds / 4`` or more.

    Returns ``{"gflops": GFLOP/s over all threads, "threads": ..., "simd": ...}``; cached per process.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise _core.ShapeError(f"threads must be a positive integer or None, got {threads!r}")
    t = threads or _core.default_threads()
    level = _core.simd_level() if simd == "auto" else simd
    return {"gflops": _core.probe_fma_peak(t, simd, seconds), "threads": t, "simd": level}
