"""Inputs of a model run as it is by a runtime that takes numpy arrays (Keras, ONNX Runtime): one array, a
list or tuple of them in the model's input order, or a dict by input name, sharing their first dimension
(the batch). Checked, never converted: a floating input in another format than the model's is refused
(the runtime would cast it silently, or fail on it), as is NaN or Inf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DTypeError, NonFiniteError, ShapeError
from .opaque import OpaqueModel

_FLOATING = ("float16", "float32", "bfloat16", "float64")


@dataclass(frozen=True)
class ArrayInputs:
    """The user's data, checked: ``arrays`` (numpy, rows first), in the structure they came in (``keys``
    for a dict, ``single`` for one array, else a list)."""

    arrays: tuple[np.ndarray, ...]
    keys: tuple[str, ...] | None = None
    single: bool = True

    def feed(self) -> Any:
        """The structure they came in: an array, a list or a dict of arrays."""
        if self.keys is not None:
            return dict(zip(self.keys, self.arrays, strict=True))
        return self.arrays[0] if self.single else list(self.arrays)

    def named(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The arrays by input name: a dict's by its keys, a list's by position in ``names``."""
        if self.keys is not None:
            return dict(zip(self.keys, self.arrays, strict=True))
        return dict(zip(names, self.arrays, strict=True))

    @property
    def rows(self) -> int:
        return len(self.arrays[0])

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(a.shape) for a in self.arrays)

    def part(self, index: Any) -> ArrayInputs:
        """The rows at ``index`` (a slice or an array of indices) of every input, contiguous."""
        return ArrayInputs(tuple(np.ascontiguousarray(a[index]) for a in self.arrays), self.keys, self.single)


def dtype_name(a: np.ndarray) -> str:
    return a.dtype.name  # ml_dtypes' bfloat16 is named "bfloat16"


def _as_array(part: Any, where: str) -> np.ndarray:
    if isinstance(part, np.ndarray):
        return part
    if hasattr(part, "numpy") and hasattr(part, "dtype") and hasattr(part, "shape"):  # an eager tensor
        return np.asarray(part.numpy())
    raise DTypeError(f"{where} must be a numpy array, got {type(part).__name__}")


def _parts(data: Any) -> tuple[list[Any], tuple[str, ...] | None, bool]:
    if isinstance(data, dict):
        if not data or not all(isinstance(k, str) for k in data):
            raise ShapeError("dict data must map the model's input names (strings) to arrays")
        return list(data.values()), tuple(data), False
    single = not isinstance(data, (tuple, list))
    return ([data] if single else list(data)), None, single


def array_inputs(data: Any, model_name: str, runtime: str, expected: Sequence[str] | dict[str, str] | None = None,
                 exact_integers: bool = False) -> ArrayInputs:
    """``data`` checked as the inputs of ``model_name``, which ``runtime`` ("Keras", "ONNX Runtime") runs.
    ``expected``: the dtype names of the model's inputs where it declares them, in input order (matched to
    a list) or by input name (matched to a dict or, in order, to a list). A floating input must be finite
    and of the declared format (float32 where none is declared); an integer input (token ids) of the
    declared dtype with ``exact_integers``, else as given."""
    if isinstance(data, ArrayInputs):
        return data  # checked when it was made
    parts, keys, single = _parts(data)
    if not parts:
        raise ShapeError("data is empty: pass an array (or a list or dict of them) whose first dimension is the batch")
    if isinstance(expected, dict):
        if keys is not None:
            unknown = [k for k in keys if k not in expected]
            if unknown:
                raise ShapeError(f"{model_name} has no input named {unknown[0]!r} (its inputs: {', '.join(expected)})")
            wanted: list[str | None] = [expected[k] for k in keys]
        else:
            wanted = list(expected.values()) if len(expected) == len(parts) else [None] * len(parts)
        if len(parts) != len(expected):
            raise ShapeError(f"{model_name} takes {len(expected)} input(s) ({', '.join(expected)}); data has {len(parts)}")
    elif expected is not None and keys is None and len(expected) == len(parts):
        wanted = list(expected)
    else:
        wanted = [None] * len(parts)
    arrays = []
    for i, (part, want) in enumerate(zip(parts, wanted, strict=True)):
        where = "data" if single else f"data[{keys[i]!r}]" if keys else f"data[{i}]"
        a = _as_array(part, where)
        if a.ndim == 0 or a.shape[0] == 0:
            raise ShapeError(f"{where} has shape {a.shape}: its first dimension is the batch and must hold rows")
        name = dtype_name(a)
        if name in _FLOATING:
            if name == "float64" or (want is not None and want != name and "float" in want):
                raise DTypeError(f"{where} is {name} but {model_name} takes {want or 'float32'}; batchcore does not "
                                 f"convert inputs ({runtime} would, or would fail): pass {where}.astype('{want or 'float32'}')")
            if not np.isfinite(a.astype(np.float32) if name == "bfloat16" else a).all():
                raise NonFiniteError(f"{where} contains NaN or Inf")
        elif a.dtype.kind not in "iub":
            raise DTypeError(f"{where} is {name}; {runtime} models here take numbers: floating or integer arrays")
        elif exact_integers and want is not None and want != name:
            raise DTypeError(f"{where} is {name} but {model_name} takes {want}; batchcore does not convert inputs: "
                             f"pass {where}.astype('{want}')")
        arrays.append(a)
    rows = {len(a) for a in arrays}
    if len(rows) > 1:
        raise ShapeError(f"the inputs' first dimensions differ ({sorted(rows)}): each is the batch")
    return ArrayInputs(tuple(arrays), keys, single)


class ArrayModel(OpaqueModel):
    """An opaque model whose inputs are :class:`ArrayInputs` (subclasses implement ``inputs`` with
    :func:`array_inputs`): their rows counted, sliced, gathered and hashed."""

    def count(self, inputs: ArrayInputs) -> int:
        return inputs.rows

    def rows(self, inputs: ArrayInputs, start: int, stop: int) -> ArrayInputs:
        return inputs.part(slice(start, stop))

    def take(self, inputs: ArrayInputs, indices: np.ndarray) -> ArrayInputs:
        return inputs.part(indices)

    def inputs_digest(self, inputs: ArrayInputs) -> str:
        h = hashlib.sha256()
        for key, a in zip(inputs.keys or range(len(inputs.arrays)), inputs.arrays, strict=True):
            h.update(f"{key}:{dtype_name(a)}:{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]
