"""The logits of a model over a dataset in batches of B, for any backend: what the studies compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import checks
from ..backends import Backend
from ..errors import ShapeError
from ..model.opaque import OpaqueModel
from ..run.plan import check_backends
from ..run.sweep import resolve_data, resolve_model
from ..run.workloads import first_logits

Logits = Callable[[Backend, int], np.ndarray]
ReportedLoss = Callable[[Backend, np.ndarray, int], tuple[float | None, str]]
Forward = Callable[[np.ndarray], Any]  # one pass over the rows at these indices


def logits_runner(module: Any, data: Any, backends: Any, sizes: list[int]) -> tuple[list[Backend], Logits, int, str]:
    """(backends checked, ``run(backend, B)`` -> (rows, classes) float32 logits of all rows in consecutive
    batches of B, the number of rows, the output's format). A module batchcore reads runs on every
    backend; one it does not read runs on torch backends only (the others refused, saying why)."""
    backends = check_backends(backends)
    model = resolve_model(module, backends, data)
    if isinstance(model, OpaqueModel):
        module_ = model
        inputs = module_.inputs(data)

        def run_module(backend: Backend, B: int) -> np.ndarray:
            return first_logits(backend.run_module(module_, inputs, B), module_.name)

        return backends, run_module, module_.count(inputs), module_.dtype or "fp32"
    x = resolve_data(model, data, None, 0, sizes)

    def run_model(backend: Backend, B: int) -> np.ndarray:
        y = backend.run_batched(model, x, B)
        if y.ndim != 2:
            raise ShapeError(f"the model's output has shape {list(y.shape)}, not (rows, classes)")
        return y

    return backends, run_model, len(x), "fp32"


def reported_loss_runner(module: Any, data: Any, backends: list[Backend]) -> ReportedLoss:
    """``loss(backend, labels, B)``: the loss the backend's framework reports from its own evaluation over all
    rows in batches of B (:meth:`Backend.reported_loss`), with how, or None and why not."""
    model = resolve_model(module, backends, data)
    inputs = data if isinstance(model, OpaqueModel) else resolve_data(model, data, None, 0, [1])
    return lambda backend, labels, B: backend.reported_loss(model, inputs, labels, B)


def check_labels(labels: Any, rows: int) -> np.ndarray:
    """Integer class labels, one per row (see :func:`batchcore.checks.labels`)."""
    return checks.labels(labels, rows)


def batch_forward(module: Any, data: Any, backend: Backend) -> tuple[Forward, int]:
    """(``forward(indices)``: one pass of the backend over those rows of ``data``, gathered into a batch
    first, as a server gathers its queued requests; the number of rows)."""
    (backend,) = check_backends([backend])
    model = resolve_model(module, [backend], data)
    if isinstance(model, OpaqueModel):
        module_ = model
        inputs = module_.inputs(data)

        def forward_module(idx: np.ndarray) -> Any:
            return backend.run_module(module_, module_.take(inputs, idx), len(idx))

        return forward_module, module_.count(inputs)
    x = resolve_data(model, data, None, 0, [1])

    def forward_model(idx: np.ndarray) -> Any:
        return backend.run(model, x[idx])

    return forward_model, len(x)
