"""A sweep planned as independent cells: the checks on what a sweep is asked to run, and the order in
which its outputs and its timed rounds are taken.

A cell is one (backend, batch size) in one timing round. The outputs of every backend at every batch
size come first (the bits), then the timing in interleaved rounds: a slow spell of the machine (seen
here to last seconds and slow everything by up to 1.9x) then hits one round of many cells, widening
their intervals, instead of all the samples of a few.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import checks
from ..backends import Backend
from ..errors import ArgumentError, ShapeError
from ..present.progress import Steps


def check_batch_sizes(batch_sizes: Any) -> list[int]:
    """Positive integers, each once, in the order given (ShapeError otherwise)."""
    if isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__iter__"):
        raise ShapeError(f"batch_sizes must be a list of positive integers, got {batch_sizes!r}")
    sizes = [checks.positive_int(b, "every batch size", ShapeError) for b in batch_sizes]
    if not sizes:
        raise ShapeError("batch_sizes is empty")
    return list(dict.fromkeys(sizes))


def check_backends(backends: Any) -> list[Backend]:
    """A non-empty list of batchcore backends with distinct labels (ArgumentError otherwise)."""
    if isinstance(backends, Backend):
        raise ArgumentError("backends must be a list of backends, e.g. [bc.native()]")
    if isinstance(backends, (str, bytes)) or not hasattr(backends, "__iter__"):
        raise ArgumentError(f"backends must be a list of backends such as bc.native(), got {backends!r}")
    found = list(backends)
    if not found:
        raise ArgumentError("backends is empty: pass at least one, e.g. [bc.native()]")
    for b in found:
        if not isinstance(b, Backend):
            raise ArgumentError(f"backends must hold batchcore backends (bc.native(), bc.torch(), ...), got {b!r}")
    labels = [b.label for b in found]
    if len(set(labels)) != len(labels):
        raise ArgumentError(f"two backends share a label ({labels}); their points could not be told apart")
    return found


def require_runs(model: Any, backends: list[Backend], why: str = "") -> None:
    """ArgumentError naming every backend that does not run ``model`` and why (``why``: what the user
    may do about it, appended)."""
    refused = [(b.label, b.runs(model)) for b in backends]
    reasons = [f"{label}: {verdict.reason}" for label, verdict in refused if not verdict]
    if reasons:
        raise ArgumentError("; ".join(reasons) + (f". {why}" if why else ""))


@dataclass(frozen=True)
class Cell:
    """One timed measurement of a sweep: ``backend`` at ``batch_size`` in timing round ``round`` (of
    ``rounds``); ``outputs`` and ``outputs_b1`` are its bits, computed before any cell is timed."""

    backend: Backend
    batch_size: int
    round: int
    rounds: int
    outputs: Any
    outputs_b1: Any

    @property
    def last(self) -> bool:
        return self.round == self.rounds - 1


def output_tasks(backends: list[Backend], sizes: list[int], done: set[tuple[str, int]],
                 run: Callable[[Backend, int], Any], steps: Steps) -> list[tuple[Backend, int, Any, Any]]:
    """(backend, B, outputs at B, outputs at B=1) for every point not yet ``done``: the bits, all computed
    before any point is timed. ``run(backend, B)``: the data's outputs in consecutive batches of B."""
    tasks: list[tuple[Backend, int, Any, Any]] = []
    for backend in backends:
        todo = [B for B in sizes if (backend.label, B) not in done]
        if not todo:
            continue
        steps.now(f"outputs of {backend.label} at B=1")
        y_b1 = run(backend, 1)
        for B in todo:
            steps.now(f"outputs of {backend.label} at B={B}")
            tasks.append((backend, B, y_b1 if B == 1 else run(backend, B), y_b1))
    return tasks


def cells(tasks: list[tuple[Backend, int, Any, Any]], rounds: int, steps: Steps) -> Iterator[Cell]:
    """Every task once per round, round after round (interleaved), each cell shown on ``steps``."""
    for r in range(rounds):
        for backend, B, y, y_b1 in tasks:
            steps.now(f"timing {backend.label} at B={B}, round {r + 1} of {rounds}")
            yield Cell(backend, B, r, rounds, y, y_b1)
            steps.done()
