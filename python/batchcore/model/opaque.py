"""Opaque models: a framework's own module that batchcore runs as it is, knowing nothing of its insides.

A frontend wraps a module it cannot (or is not asked to) read into a subclass of :class:`OpaqueModel`
(PyTorch's: :class:`batchcore.frontends.torch.module.TorchModule`); only the backends of that framework
run it (``Backend.runs``). Its outputs come back as :class:`Output` records, each compared in its own
format; its FLOPs and its exactly rounded reference are unknown to batchcore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError

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


class Outputs(list[Output]):
    """A module's outputs (a list of :class:`Output`) and ``left_out``: what it also returned that is not a
    tensor with the batch first (a Hugging Face cache, a number), named by its place and type, e.g.
    ``"output['past_key_values'] (DynamicCache)"``. Those are not compared, and a point says which they were."""

    def __init__(self, outputs: Iterable[Output] = (), left_out: Iterable[str] = ()):
        super().__init__(outputs)
        self.left_out = tuple(left_out)


def concat_outputs(batches: list[Outputs]) -> Outputs:
    """The outputs of consecutive batches joined row-wise (each batch must return the same outputs)."""
    first = batches[0]
    for b in batches[1:]:
        if [(o.name, o.fmt, o.values.shape[1:]) for o in b] != [(o.name, o.fmt, o.values.shape[1:]) for o in first]:
            raise ShapeError("the module returned different outputs for different batches; batchcore compares "
                             "outputs of the same names, formats and shapes")
    return Outputs([Output(o.name, np.concatenate([b[i].values for b in batches]), o.fmt) for i, o in enumerate(first)],
                   first.left_out)


def predictions_of(outputs: list[Output]) -> Output | None:
    """The output argmax and accuracy read: the first floating one of shape (rows, ..., classes), its
    predictions the argmax over the last dimension (one per row of a (rows, classes) output; one per
    position of a (rows, positions, vocabulary) one). None when there is none."""
    return next((o for o in outputs if o.fmt in FLOAT_FORMATS and o.values.ndim >= 2), None)


def predictions_note(output: Output) -> str:
    """What argmax and accuracy were computed on, in words (the reduction stated in every point)."""
    per_row = int(np.prod(output.values.shape[1:-1], dtype=np.int64))
    classes = output.values.shape[-1]
    return (f"argmax over the last dimension of {output.name} {list(output.values.shape)}: {per_row} "
            f"prediction{'s' if per_row != 1 else ''} of {classes} classes per row")


def format_of(dtype_name: str) -> str:
    """batchcore's name for a floating format ("float32" -> "fp32", "float16" -> "fp16", "bfloat16" ->
    "bf16"); any other dtype keeps its own name ("int64", "float64")."""
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype_name, dtype_name)


def as_output(name: str, values: np.ndarray, dtype_name: str, rows: int) -> Output:
    """One output leaf as an :class:`Output`: ``values`` in numpy (bfloat16 already widened to float32,
    exactly), ``dtype_name`` its framework dtype's name. ShapeError when its first dimension is not the
    batch, DTypeError for a floating format batchcore does not compare (float64)."""
    if values.ndim == 0 or values.shape[0] != rows:
        raise ShapeError(f"{name} has shape {tuple(values.shape)}; batchcore compares outputs whose first dimension "
                         f"is the batch ({rows} rows here)")
    fmt = format_of(dtype_name)
    if fmt not in FLOAT_FORMATS and ("float" in dtype_name or "complex" in dtype_name):
        raise DTypeError(f"{name} is {dtype_name}; batchcore compares float32, float16 and bfloat16 outputs")
    return Output(name, np.ascontiguousarray(values), fmt)


def flatten_outputs(result: Any, rows: int, leaf: Callable[[Any, str], Output | None], framework: str) -> Outputs:
    """What a module returned (a leaf, or tuples, lists and dicts of them, nested: a Hugging Face
    ``ModelOutput`` is a dict) as Outputs named by their place ("output", "output[1]", "output['logits']").
    ``leaf(obj, name)`` makes the Output of one of the framework's tensors (:func:`as_output`) and returns
    None for anything that is not one. Anything else (a cache object, a number, None) is left out and named
    in ``left_out``; DTypeError when nothing is left to compare."""
    found: list[Output] = []
    left_out: list[str] = []

    def walk(obj: Any, name: str) -> None:
        out = leaf(obj, name)
        if out is not None:
            found.append(out)
        elif isinstance(obj, (tuple, list)):
            for i, item in enumerate(obj):
                walk(item, f"{name}[{i}]")
        elif isinstance(obj, dict):
            for k, item in obj.items():
                walk(item, f"{name}[{k!r}]")
        else:
            left_out.append(f"{name} ({type(obj).__name__})")

    walk(result, "output")
    if not found:
        raise DTypeError(f"the module returned no {framework} tensor to compare ({', '.join(left_out) or 'nothing'}); "
                         f"a module's outputs must be {framework} tensors (or tuples, lists or dicts of them)")
    return Outputs(found, tuple(left_out))
