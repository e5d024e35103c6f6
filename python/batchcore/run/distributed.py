"""A sweep's cells run by an executor (:mod:`batchcore.run.executors`): the driver's loop.

The cells go out at once: each backend's outputs at B=1 and at every batch size to measure, then the timed
rounds (round after round, so a node runs them interleaved). Each backend's outputs are computed on one
node (its bits home: B is compared with B=1 from the same machine), each point's rounds on one node (its
timing home: the rounds pooled into one interval come from one machine). Results stream back in any order;
a point is recorded and logged the moment its outputs and its last round are in, and its outputs are then
dropped, so the driver's memory stays flat over a long grid.

A lost node: every cell homed there moves to another node of the same machine kind (its outputs, or the
point's rounds, all measured again there); where none is left, its points are reported as not measured,
with the reason. A cell that fails for any other reason fails the sweep with its own exception. Ray's
retries of a crashed worker are Ray's (``max_retries``), not repeated here.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import files
from ..backends import Backend, TimedBatch
from ..measure.timing import Measurement, Timer
from ..present.progress import Steps
from . import cells
from .executors import CellExecutor

Key = tuple[str, int]  # (backend label, batch size)


@dataclass
class _Open:
    """A point not yet recorded: its outputs, its rounds, the nodes that computed them."""

    backend: Backend
    batch_size: int
    timing_home: str | None
    y: Any = None
    bits_node: str | None = None
    rounds: dict[int, tuple[TimedBatch, str]] = field(default_factory=dict)  # round -> (its timing, its node)
    kind: str | None = None
    machine: str | None = None
    thread_environment: dict[str, str | None] | None = None  # of the process that timed it (else computed it)
    generation: int = 0


@dataclass(frozen=True)
class _Cell:
    """A cell in flight: what it computes, and the generation of its home it was sent to."""

    label: str
    batch_size: int
    round: int | None  # None: the outputs at batch_size
    node: str | None
    generation: int


class Driver:
    """One sweep's cells through ``executor``; :meth:`run` returns the points and those not measured."""

    def __init__(self, work: Any, backends: list[Backend], sizes: list[int], done: set[Key], timer: Timer, rounds: int,
                 timing: bool, log: files.PointLog | None, executor: CellExecutor, steps: Steps):
        self.work, self.timer, self.rounds, self.timing, self.log = work, timer, rounds, timing, log
        self.executor, self.steps = executor, steps
        self.backends = {b.label: b for b in backends}
        self.box = executor.share(work.payload)
        nodes = executor.nodes_for(backends, timing)
        turn = itertools.cycle(nodes)
        self.open: dict[Key, _Open] = {(b.label, B): _Open(b, B, next(turn) if timing else None)
                                       for b in backends for B in sizes if (b.label, B) not in done}
        self.bits_home = {label: next(turn) for label in dict.fromkeys(k[0] for k in self.open)}
        self.bits_generation = dict.fromkeys(self.bits_home, 0)
        self.y_b1: dict[str, tuple[Any, str | None]] = {}
        self.flying: dict[concurrent.futures.Future[Any], _Cell] = {}
        self.timed_queue: deque[_Cell] = deque()
        self.points: list[dict[str, Any]] = []
        self.not_measured: list[dict[str, Any]] = []

    def run(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for label in self.bits_home:
            self._send_outputs(label)
        if self.timing:
            for r in range(self.rounds):
                self.timed_queue.extend(_Cell(k[0], k[1], r, p.timing_home, 0) for k, p in self.open.items())
        self.steps.total(len(self.flying) + len(self.timed_queue))
        self._send_timed()
        try:
            while self.flying:
                finished, _ = concurrent.futures.wait(list(self.flying), return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    self._take(self.flying.pop(future), future)
                self._send_timed()
        finally:
            for future in self.flying:
                future.cancel()
        return self.points, self.not_measured

    # Sending

    def _send_outputs(self, label: str) -> None:
        """The backend's outputs at B=1 and at every open batch size, all on its bits home."""
        node, generation = self.bits_home[label], self.bits_generation[label]
        for B in dict.fromkeys([1, *(k[1] for k in self.open if k[0] == label)]):
            self._send(_Cell(label, B, None, node, generation), cells.outputs_cell,
                       (self.box, self.backends[label].settings(), B))

    def _send_timed(self) -> None:
        limit = self.executor.timed_in_flight
        while self.timed_queue and (limit is None or sum(c.round is not None for c in self.flying.values()) < limit):
            cell = self.timed_queue.popleft()
            point = self.open.get((cell.label, cell.batch_size))
            if point is None or point.generation != cell.generation:
                continue  # its point was recorded, given up or moved since
            self._send(cell, cells.timed_cell, (self.box, point.backend.settings(), cell.batch_size,
                                                self.timer.per_round(self.rounds), cell.round == self.rounds - 1))

    def _send(self, cell: _Cell, fn: Any, args: tuple[Any, ...]) -> None:
        backend = self.backends[cell.label]
        self.flying[self.executor.submit(fn, args, cell.node, backend, timed=cell.round is not None)] = cell

    # Receiving

    def _take(self, cell: _Cell, future: concurrent.futures.Future[Any]) -> None:
        try:
            result: cells.CellResult = future.result()
        except concurrent.futures.CancelledError:
            return
        except Exception as e:
            if not self.executor.lost(e):
                raise self.executor.cause(e) from None
            self._lost(cell, e)
            return
        self.steps.done()
        if cell.round is None:
            self._outputs_in(cell, result)
        else:
            point = self.open.get((cell.label, cell.batch_size))
            if point is None or point.generation != cell.generation:
                return
            point.rounds[cell.round] = (result.value, result.node)
            point.kind, point.machine, point.thread_environment = result.kind, result.machine, result.thread_environment
            self._finish(point)

    def _outputs_in(self, cell: _Cell, result: cells.CellResult) -> None:
        label = cell.label
        if cell.generation != self.bits_generation.get(label):
            return  # from a bits home since lost
        y = self.work.received(self.backends[label], result.value)
        if cell.batch_size == 1:
            self.y_b1[label] = (y, result.node)
        point = self.open.get((label, cell.batch_size))
        if point is not None:
            point.y, point.bits_node, point.kind = y, result.node, point.kind or result.kind
            point.machine = point.machine or result.machine
            point.thread_environment = point.thread_environment or result.thread_environment
        # B=1's outputs complete every point of the backend that waited for them; any other only its own point.
        waiting = [p for k, p in self.open.items() if k[0] == label] if cell.batch_size == 1 else [point]
        for p in waiting:
            if p is not None:
                self._finish(p)

    def _finish(self, point: _Open) -> None:
        label = point.backend.label
        if point.y is None or label not in self.y_b1 or (self.timing and len(point.rounds) < self.rounds):
            return
        measured, timed_on = None, None
        if self.timing:
            rounds = [point.rounds[r][0] for r in range(self.rounds)]
            measured = rounds[-1]
            measured.timing = Measurement.pooled([m.timing for m in rounds], self.timer)
            nodes = sorted({str(node) for _, node in point.rounds.values()})
            timed_on = nodes[0] if len(nodes) == 1 else nodes  # one node, always (a list would say otherwise)
        p = self.work.point(point.backend, point.batch_size, point.y, self.y_b1[label][0], measured)
        p["node"] = {"bits": point.bits_node, "bits_b1": self.y_b1[label][1], "timing": timed_on, "kind": point.kind,
                     "machine": point.machine, "thread_environment": point.thread_environment}
        p["placement"] = self.executor.placement(point.backend, self.timing)
        del self.open[(label, point.batch_size)]
        self.points.append(p)
        if self.log:
            self.log.write(p)
        if not any(k[0] == label for k in self.open):
            self.y_b1.pop(label, None)  # the backend's last point: its B=1 outputs go too

    # Losing a node

    def _lost(self, cell: _Cell, error: BaseException) -> None:
        """``cell``'s node is gone: move what was homed there to a node of its kind, or give it up."""
        if cell.round is None:
            if cell.generation != self.bits_generation.get(cell.label):
                return  # already moved
            affected = [p for k, p in self.open.items() if k[0] == cell.label]
        else:
            point = self.open.get((cell.label, cell.batch_size))
            if point is None or point.generation != cell.generation:
                return
            affected = [point]
        new = self.executor.replacement(cell.node)
        if new is None:
            reason = (f"node {cell.node} was lost ({type(error).__name__}) and no node of its machine kind is left")
            for p in affected:
                self.not_measured.append({"backend": p.backend.label, "batch_size": p.batch_size, "reason": reason})
                del self.open[(p.backend.label, p.batch_size)]
            if cell.round is None:
                self.bits_generation.pop(cell.label)
            return
        if cell.round is None:
            self.bits_home[cell.label] = new
            self.bits_generation[cell.label] += 1
            self.y_b1.pop(cell.label, None)
            for p in affected:
                p.y = None
            self._send_outputs(cell.label)
        else:
            point = affected[0]
            point.generation += 1
            point.timing_home, point.rounds = new, {}
            self.timed_queue.extend(_Cell(cell.label, cell.batch_size, r, new, point.generation) for r in range(self.rounds))
