"""Timing another library's GPU work: a Timer sampler from CUDA events, the core's SM-clock check on
that library's stream, and an L2-sized flush buffer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Event(Protocol):
    """A CUDA event of torch or CuPy."""

    def record(self) -> Any: ...

    def synchronize(self) -> Any: ...


class SmClockCheck(Protocol):
    """What brackets a sample to tell whether the SM clock throttled (:class:`stream_sm_clock`)."""

    def mark_start(self) -> None: ...

    def mark_stop(self) -> None: ...

    def throttled(self) -> bool: ...


Sample = Callable[[int], tuple[float, bool]]


def event_sampler(run: Callable[[], object], start: Event, end: Event, elapsed_ms: Callable[[Event], float],
                  evict: Callable[[], object] | None = None, sm_clock: SmClockCheck | None = None) -> Sample:
    """A Timer sampler from a pair of CUDA events (torch's or CuPy's: ``record()``, ``synchronize()``;
    ``elapsed_ms(end)`` gives the ms since ``start``). Hot (``evict`` None): one event pair around a block
    of back-to-back ``run()`` calls. Cold: ``evict()`` (a write of twice the L2) before every call, each
    call timed by its own pair so the eviction is never part of a sample. ``sm_clock`` (``mark_start()``,
    ``mark_stop()``, ``throttled()``, e.g. :func:`stream_sm_clock`) brackets each sample; a sample it
    finds throttled is returned as rejected. Returns ``(ns of the block, rejected)``."""

    def sample(calls: int) -> tuple[float, bool]:
        total_ms = 0.0
        if sm_clock is not None:
            sm_clock.mark_start()
        for _ in range(1 if evict is None else calls):
            if evict is not None:
                evict()
            start.record()
            for _ in range(calls if evict is None else 1):
                run()
            end.record()
            end.synchronize()
            total_ms += elapsed_ms(end)
        if sm_clock is None:
            return total_ms * 1e6, False
        sm_clock.mark_stop()
        return total_ms * 1e6, bool(sm_clock.throttled())

    return sample


class stream_sm_clock:
    """The core's SM-clock check (``_cuda.SmClock``: SM 0's cycles over global nanoseconds, read by a tiny
    kernel at each end of a sample) on another library's stream, given as its integer handle."""

    def __init__(self, index: int, stream_handle: int):
        from ..info import cuda_module

        cu = cuda_module()
        if cu is None:  # pragma: no cover - callers check first
            raise RuntimeError("batchcore was built without CUDA")
        self._clock = cu.SmClock(index)
        self._stream = int(stream_handle)

    def mark_start(self) -> None:
        self._clock.mark_start(self._stream)

    def mark_stop(self) -> None:
        self._clock.mark_stop(self._stream)

    def throttled(self) -> bool:
        return bool(self._clock.throttled(self._stream))


def _sm_clock_for(index: int, stream_handle: int) -> stream_sm_clock | None:
    """A throttle check on the stream when batchcore's CUDA core is built, else None (then the record's
    clock field says that samples were not checked)."""
    from ..info import cuda_module

    return stream_sm_clock(index, stream_handle) if cuda_module() is not None else None


def _clock_note(sm_clock: SmClockCheck | None) -> str:
    return ("; samples under 75 % of the default SM clock discarded" if sm_clock is not None
            else "; SM clock not checked (batchcore built without CUDA)")


def _l2_flush_tensor(torch: Any, device: str) -> Any:
    """A tensor twice the GPU's L2: writing it before a pass evicts the pass's data from the L2."""
    l2 = torch.cuda.get_device_properties(device).L2_cache_size
    return torch.zeros(max(2 * l2 // 4, 1), dtype=torch.float32, device=device)
