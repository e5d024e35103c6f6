"""``sweep()`` of a user's own module (any ``nn.Module`` or callable that ``bc.from_torch`` does not read),
through torch backends only: the same questions as for a :class:`~batchcore.models.Model` (bits against
B=1, argmax flips, accuracy, time per batch in interleaved rounds) for whatever the module takes and
returns. Its FLOPs and its exactly rounded reference are unknown to batchcore; those fields are None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import resultfile
from .backends import Backend, TimedBatch
from .backends.torch_backend import TorchBackend
from .errors import ArgumentError, ShapeError
from .progress import Steps
from .results import SweepResult, make_module_point
from .timing import Measurement, Timer
from .user_modules import UserModule, as_inputs, rows_of, slice_rows, tensors_digest


def check_module_backends(module: UserModule, backends: list[Backend], reason: str) -> None:
    """Only torch backends run a module batchcore does not read; ``reason`` says why it was not read."""
    others = [b.label for b in backends if not isinstance(b, TorchBackend)]
    if others:
        raise ArgumentError(f"{', '.join(others)} cannot run {module.name}: {reason}. Torch backends run any "
                            "module as it is (backends=[bc.torch()]).")


def array_digest(a: np.ndarray | None) -> str | None:
    """A short hash of an array's bytes (None for None): what a result file says its data were."""
    return None if a is None else hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def output_tasks(backends: list[Any], sizes: list[int], done: set[tuple[str, int]],
                 run: Callable[[Any, int], Any], steps: Steps) -> list[tuple[Any, int, Any, Any]]:
    """(backend, B, outputs at B, outputs at B=1) for every point not yet ``done``: the bits, all computed
    before any point is timed. ``run(backend, B)``: the data's outputs in consecutive batches of B."""
    tasks: list[tuple[Any, int, Any, Any]] = []
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


def timing_rounds(tasks: list[tuple[Any, int, Any, Any]], rounds: int,
                  steps: Steps) -> Iterator[tuple[int, Any, int, Any, Any]]:
    """(round, backend, B, outputs at B, outputs at B=1): every task once per round, round after round
    (interleaved, so that a slow spell of the machine widens many points' intervals a little instead of
    biasing a few), each step shown on ``steps``."""
    for r in range(rounds):
        for backend, B, y, y_b1 in tasks:
            steps.now(f"timing {backend.label} at B={B}, round {r + 1} of {rounds}")
            yield r, backend, B, y, y_b1
            steps.done()


def sweep_module(module: UserModule, sizes: list[int], backends: list[Backend], data: Any, labels: Any,
                 timer: Timer, rounds: int, out: Any, env: dict[str, Any], progress: bool | None) -> SweepResult:
    """The points of a module's sweep (see :func:`batchcore.sweep`; ``timer`` and ``rounds`` checked there)."""
    if data is None:
        raise ShapeError(f"a sweep of {module.name} needs data=: batchcore cannot know what a module it does not "
                         "read takes (an array or tensor, or a tuple of them, whose first dimension is the batch)")
    inputs = as_inputs(data, module)
    n = rows_of(inputs)
    if max(sizes) > n:
        raise ShapeError(f"batch size {max(sizes)} exceeds the {n} rows of data: its bits would come from batches "
                         f"of {n}; pass more rows or smaller batch sizes")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ShapeError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
    config = {"model": module.describe(), "model_digest": module.digest(), "rows": n,
              "data_digest": tensors_digest(enumerate(inputs)), "labels_digest": array_digest(labels)}
    env["probes"] = {}
    log = resultfile.PointLog(out, config, env) if out is not None else None
    points = list(log.done) if log else []
    done = {(p["backend"], p["batch_size"]) for p in points}
    torch_backends = [b for b in backends if isinstance(b, TorchBackend)]
    round_timer = timer.per_round(rounds)
    parts: dict[tuple[str, int], list[TimedBatch]] = {}
    with Steps("sweep", None, progress) as steps:
        tasks = output_tasks(torch_backends, sizes, done, lambda b, B: b.run_module(module, inputs, B), steps)
        steps.total(len(tasks) * rounds)
        for r, backend, B, y, y_b1 in timing_rounds(tasks, rounds, steps):
            measured = backend.measure_module(module, slice_rows(inputs, 0, B), round_timer, memory=r == rounds - 1)
            parts.setdefault((backend.label, B), []).append(measured)
            if r < rounds - 1:
                continue
            measured.timing = Measurement.pooled([m.timing for m in parts.pop((backend.label, B))], timer)
            p = make_module_point(backend, B, y, y_b1, labels, measured)
            points.append(p)
            if log:
                log.write(p)
    return SweepResult(points, env, config)
