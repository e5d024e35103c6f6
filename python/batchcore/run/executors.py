"""The seam between a sweep and whatever runs its cells elsewhere: a :class:`CellExecutor`.

``bc.sweep(..., executor=...)`` takes None (every cell in the sweep's own loop, :mod:`batchcore.run.sweep`),
any ``concurrent.futures.Executor`` (wrapped in :class:`PoolExecutor`), or ``bc.ray_executor(...)``
(:mod:`batchcore.run.ray_cluster`). An executor says where cells may run (the nodes of one machine kind),
how much of a node a cell reserves, ships a cell there and hands back a ``concurrent.futures.Future``;
what counts as a lost node, and what stands in for it, is the executor's to say. The sweep's driver
(:mod:`batchcore.run.distributed`) does the rest the same way for every executor.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from ..backends import Backend
from ..errors import ArgumentError


class CellExecutor:
    """Base of the executors a sweep ships its cells to. ``timed_in_flight``: how many timed cells may run at
    once (None: as many as the executor's own reservations allow, every cell on cores of its own)."""

    name = "executor"
    timed_in_flight: int | None = 1

    def share(self, payload: Any) -> Any:
        """What the cells get for ``payload`` (the model and its data): the payload itself, or a reference
        to one copy of it (:class:`batchcore.run.cells.SharedPayload`)."""
        return payload

    def nodes_for(self, backends: list[Backend], timing: bool) -> list[str | None]:
        """The nodes a sweep of ``backends`` may run on, all of one machine kind (None: wherever the
        executor puts a cell); refuses, naming why, where its cells could not run honestly."""
        return [None]

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], node: str | None, backend: Backend,
               timed: bool) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on ``node`` (a cell of ``backend``, timed or not) and return its future."""
        raise NotImplementedError  # pragma: no cover - abstract

    def lost(self, error: BaseException) -> bool:
        """Whether ``error`` means the cell's node was lost (not that the cell itself failed)."""
        return False

    def replacement(self, node: str | None) -> str | None:
        """A node of the same machine kind as the lost ``node`` that is still there, or None."""
        return None

    def cause(self, error: BaseException) -> BaseException:
        """The exception a cell raised, as its own code raised it (an executor may wrap it)."""
        return error

    def placement(self, backend: Backend, timed: bool) -> dict[str, Any]:
        """What a cell of ``backend`` reserved where it ran: recorded in every point it made."""
        return {"executor": self.name, "timed_in_flight": self.timed_in_flight}

    def identities(self) -> dict[str, dict[str, Any]]:
        """Each node used so far, by id: its machine identity (:func:`batchcore.info.machine_identity`)."""
        return {}


class PoolExecutor(CellExecutor):
    """Any ``concurrent.futures.Executor`` (a process or thread pool, or another library's adapter): cells of
    outputs go out all at once, timed cells one at a time, so that no two timed cells ever share cores."""

    name = "pool"

    def __init__(self, pool: concurrent.futures.Executor):
        self.pool = pool
        self.name = type(pool).__name__

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], node: str | None, backend: Backend,
               timed: bool) -> concurrent.futures.Future[Any]:
        return self.pool.submit(fn, *args)


def as_cell_executor(executor: Any) -> CellExecutor | None:
    """``executor`` as the sweep uses it: None (its own loop), a :class:`CellExecutor` as it is, a
    ``concurrent.futures.Executor`` wrapped; ArgumentError for anything else."""
    if executor is None or isinstance(executor, CellExecutor):
        return executor
    if isinstance(executor, concurrent.futures.Executor):
        return PoolExecutor(executor)
    raise ArgumentError(f"executor must be None, a concurrent.futures.Executor or bc.ray_executor(...), got {executor!r}")
