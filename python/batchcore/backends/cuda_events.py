"""Timing another library's GPU work: a Timer sampler from CUDA events, the core's SM-clock check on
that library's stream, and an L2-sized flush buffer."""

from __future__ import annotations


def event_sampler(run, start, end, elapsed_ms, evict=None, sm_clock=None):
    """A Timer sampler from a pair of CUDA events (torch's or CuPy's: ``record()``, ``synchronize()``;
    ``elapsed_ms(end)`` gives the ms since ``start``). Hot (``evict`` None): one event pair around a block
    of back-to-back ``run()`` calls. Cold: ``evict()`` (a write of twice the L2) before every call, each
    call timed by its own pair so the eviction is never part of a sample. ``sm_clock`` (``mark_start()``,
    ``mark_stop()``, ``throttled()``, e.g. :func:`stream_sm_clock`) brackets each sample; a sample it
    finds throttled is returned as rejected. Returns ``(ns of the block, rejected)``."""

    def sample(calls):
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

        self._clock = cuda_module().SmClock(index)
        self._stream = int(stream_handle)

    def mark_start(self):
        self._clock.mark_start(self._stream)

    def mark_stop(self):
        self._clock.mark_stop(self._stream)

    def throttled(self) -> bool:
        return self._clock.throttled(self._stream)


def _sm_clock_for(index: int, stream_handle: int):
    """A throttle check on the stream when batchcore's CUDA core is built, else None (then the record's
    clock field says that samples were not checked)."""
    from ..info import cuda_module

    return stream_sm_clock(index, stream_handle) if cuda_module() is not None else None


def _clock_note(sm_clock) -> str:
    return ("; samples under 75 % of the default SM clock discarded" if sm_clock is not None
            else "; SM clock not checked (batchcore built without CUDA)")


def _l2_flush_tensor(torch, device):
    """A tensor twice the GPU's L2: writing it before a pass evicts the pass's data from the L2."""
    l2 = torch.cuda.get_device_properties(device).L2_cache_size
    return torch.zeros(max(2 * l2 // 4, 1), dtype=torch.float32, device=device)
