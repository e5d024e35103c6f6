"""Opaque models: a framework's own module that batchcore runs as it is, knowing nothing of its insides.

A frontend wraps a module it cannot (or is not asked to) read into a subclass of :class:`OpaqueModel`
(PyTorch's: :class:`batchcore.frontends.torch.module.TorchModule`); only the backends of that framework
run it (``Backend.runs``). Its outputs come back as :class:`Output` records, each compared in its own
format; its FLOPs and its exactly rounded reference are unknown to batchcore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError

# the floating formats outputs are compared in, by batchcore's name for them
FLOAT_FORMATS = frozenset({"fp32", "fp16", "bf16"})


class OpaqueModel:
    """A module run as it is by its own framework. Subclasses set ``framework`` (the name backends match
    against), ``name`` and ``dtype`` (the floating format its parameters share, None for none), and
    implement :meth:`describe` and :meth:`digest`."""

    framework = "none"
    name = "module"
    dtype: str | None = None

    def describe(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def digest(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the module's data, in its framework's own types (nothing converted) -----------------------------
    def inputs(self, data: Any) -> Any:  # pragma: no cover - abstract
        """The user's data as this framework's inputs (checked: formats, rows, finiteness)."""
        raise NotImplementedError

    def count(self, inputs: Any) -> int:  # pragma: no cover - abstract
        """The rows of ``inputs``."""
        raise NotImplementedError

    def rows(self, inputs: Any, start: int, stop: int) -> Any:  # pragma: no cover - abstract
        """Rows ``start:stop`` of ``inputs``."""
        raise NotImplementedError

    def take(self, inputs: Any, indices: np.ndarray) -> Any:  # pragma: no cover - abstract
        """The rows of ``inputs`` at ``indices``, gathered into one batch."""
        raise NotImplementedError

    def inputs_digest(self, inputs: Any) -> str:  # pragma: no cover - abstract
        """A short hash of ``inputs``' bytes, for the result file."""
        raise NotImplementedError


@dataclass(frozen=True)
class Output:
    """One output of a module: its ``name`` ("output", "output[1]", "logits", ...), its values (float16,
    float32 or integer numpy; bfloat16 values as float32, exactly) and their format ("fp32", "fp16",
    "bf16", or the integer dtype's name)."""

    name: str
    values: np.ndarray
    fmt: str


def concat_outputs(batches: list[list[Output]]) -> list[Output]:
    """The outputs of consecutive batches joined row-wise (each batch must return the same outputs)."""
    first = batches[0]
    for b in batches[1:]:
        if [(o.name, o.fmt, o.values.shape[1:]) for o in b] != [(o.name, o.fmt, o.values.shape[1:]) for o in first]:
            raise ShapeError("the module returned different outputs for different batches; batchcore compares "
                             "outputs of the same names, formats and shapes")
    return [Output(o.name, np.concatenate([b[i].values for b in batches]), o.fmt) for i, o in enumerate(first)]
