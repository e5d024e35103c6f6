"""The logits of a model over a dataset in batches of B, for any backend: what the studies compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends import Backend
from ..backends.torch_backend import TorchBackend
from ..errors import ShapeError
from ..sweep import check_backends, resolve_data, resolve_model
from ..user_modules import FLOAT_FORMATS, Output, UserModule, as_inputs, rows_of

Logits = Callable[[Backend, int], np.ndarray]
Forward = Callable[[np.ndarray], Any]  # one pass over the rows at these indices


def first_logits(outputs: list[Output], name: str) -> np.ndarray:
    """The first floating output of shape (rows, classes): what predictions are read from."""
    for o in outputs:
        if o.fmt in FLOAT_FORMATS and o.values.ndim == 2:
            return np.asarray(o.values, dtype=np.float32)
    raise ShapeError(f"{name} returns no floating output of shape (rows, classes) to read predictions from "
                     f"(it returns {', '.join(f'{o.name} {o.fmt} {list(o.values.shape)}' for o in outputs)})")


def logits_runner(module: Any, data: Any, backends: Any, sizes: list[int]) -> tuple[list[Backend], Logits, int, str]:
    """(backends checked, ``run(backend, B)`` -> (rows, classes) float32 logits of all rows in consecutive
    batches of B, the number of rows, the output's format). A module batchcore reads runs on every
    backend; one it does not read runs on torch backends only (the others refused, saying why)."""
    backends = check_backends(backends)
    model = resolve_model(module, backends, data)
    if isinstance(model, UserModule):
        inputs = as_inputs(data, model)
        name = model.name

        def run_module(backend: Backend, B: int) -> np.ndarray:
            assert isinstance(backend, TorchBackend)
            return first_logits(backend.run_module(model, inputs, B), name)

        return backends, run_module, rows_of(inputs), model.dtype or "fp32"
    x = resolve_data(model, data, None, 0, sizes)

    def run_model(backend: Backend, B: int) -> np.ndarray:
        y = backend.run_batched(model, x, B)
        if y.ndim != 2:
            raise ShapeError(f"the model's output has shape {list(y.shape)}, not (rows, classes)")
        return y

    return backends, run_model, len(x), "fp32"


def check_labels(labels: Any, rows: int) -> np.ndarray:
    """Integer class labels, one per row."""
    out = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if out.shape != (rows,) or not np.issubdtype(out.dtype, np.integer):
        raise ShapeError(f"labels must be integers of shape ({rows},), got {out.dtype} {out.shape}")
    return out


def batch_forward(module: Any, data: Any, backend: Backend) -> tuple[Forward, int]:
    """(``forward(indices)``: one pass of the backend over those rows of ``data``, gathered into a batch
    first, as a server gathers its queued requests; the number of rows)."""
    (backend,) = check_backends([backend])
    model = resolve_model(module, [backend], data)
    if isinstance(model, UserModule):
        inputs = as_inputs(data, model)
        assert isinstance(backend, TorchBackend)
        torch_backend = backend

        def forward_module(idx: np.ndarray) -> Any:
            return torch_backend.run_module(model, tuple(t[idx] for t in inputs), len(idx))

        return forward_module, rows_of(inputs)
    x = resolve_data(model, data, None, 0, [1])

    def forward_model(idx: np.ndarray) -> Any:
        return backend.run(model, x[idx])

    return forward_model, len(x)
