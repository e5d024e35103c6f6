"""The largest batch that fits: doubling, then bisection, each step a real forward pass.

A step of the search runs one forward pass of B rows and catches ``OutOfMemoryError`` (the backend frees everything
and the search goes on in the same process). On the CPU the search takes a byte budget, enforced by the
native core's tracking allocator, instead of exhausting the machine; on a GPU it runs against the real
device memory (a budget, when given, is enforced as well). The search assumes that a batch that fits implies
that every smaller one fits (memory grows with B).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import checks
from ..errors import ArgumentError, OutOfMemoryError
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from ..present.progress import Steps


class MemoryBounded(Protocol):
    """What the search needs of a backend (every batchcore backend has it; those that cannot bound their
    memory refuse with ArgumentError, saying which can)."""

    @property
    def label(self) -> str: ...

    def peak_bytes_if_fits(self, model: Any, batch_size: int, budget_bytes: int | None = None) -> int | None: ...


@dataclass
class LargestBatch:
    """The result of :func:`largest_batch`: ``batch_size`` (the largest B that fit), its peak bytes,
    the budget (None: the device's real memory), every step of the search as ``(B, fitted, peak_bytes)``
    in the order run, and ``capped`` when ``max_batch`` fitted (the true limit may be larger)."""

    batch_size: int
    peak_bytes: int | None
    budget_bytes: int | None
    backend: str
    steps: list[tuple[int, bool, int | None]] = field(default_factory=list)
    capped: bool = False


def largest_batch(model: AnyModel, backend: MemoryBounded, budget_bytes: int | None = None, start: int = 1,
                  max_batch: int = 1 << 24, progress: bool | None = None) -> LargestBatch:
    """The largest batch size whose forward pass fits, found by doubling from ``start`` until a pass
    fails, then bisecting between the last fit and the first failure (about 2 log2(B) passes).

    backend: a backend with a ``peak_bytes_if_fits`` method: ``bc.native()`` on the CPU (needs ``budget_bytes``) or on
    a GPU; ``bc.torch(device="cuda")``; ``bc.cupy()``.
    budget_bytes: bytes the pass may hold at its peak (weights included); required on the CPU.
    progress: show each probe on standard error (None: only on a terminal; see :mod:`batchcore.present.progress`).
    Raises OutOfMemoryError when not even ``start`` rows fit.
    """
    if not isinstance(model, (Model, GraphModel)):
        raise ArgumentError(f"model must be a batchcore Model (bc.mlp(...) or bc.from_torch(module)), got {model!r}")
    if not callable(getattr(backend, "peak_bytes_if_fits", None)):
        raise ArgumentError(f"backend must be a batchcore backend such as bc.native(), got {backend!r}")
    start = checks.positive_int(start, "start")
    max_batch = checks.positive_int(max_batch, "max_batch")
    if budget_bytes is not None:
        budget_bytes = checks.positive_int(budget_bytes, "budget_bytes")
    if start > max_batch:
        raise ArgumentError(f"start ({start}) exceeds max_batch ({max_batch})")
    steps: list[tuple[int, bool, int | None]] = []

    def fits(B: int) -> bool:
        shown.now(f"B={B}")
        peak = backend.peak_bytes_if_fits(model, B, budget_bytes)
        steps.append((B, peak is not None, peak))
        shown.done()
        return peak is not None

    with Steps(f"largest batch, {backend.label}", None, progress) as shown:
        good, bad = _double_then_bisect(fits, start, max_batch)
    if good == 0:
        where = f"a budget of {budget_bytes} bytes" if budget_bytes else "the device memory"
        raise OutOfMemoryError(f"{backend.label}: not even {start} row(s) fit in {where}")
    peak = next(p for b, ok, p in reversed(steps) if ok and b == good)
    return LargestBatch(good, peak, budget_bytes, backend.label, steps, capped=bad is None)


def _double_then_bisect(fits: Callable[[int], bool], start: int, max_batch: int) -> tuple[int, int | None]:
    """(largest B found to fit, or 0; smallest B found to fail, or None when ``max_batch`` fit): doubling
    from ``start`` to the first failure, then bisection between the last fit and it."""
    good, bad, B = 0, None, start
    while bad is None:
        if fits(B):
            good = B
            if B == max_batch:
                return good, None
            B = min(2 * B, max_batch)
        else:
            bad = B
    if good == 0:
        return 0, bad
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good, bad
