"""An ONNX model run as it is (an :class:`~batchcore.model.opaque.OpaqueModel`) by ONNX Runtime: a ``.onnx``
file or an ``onnx.ModelProto``, its inputs numpy arrays (one, a list in the graph's input order, or a dict
by input name) of exactly the element types the graph declares, its outputs compared each in its own
format and named as the graph names them.

The model is checked when it is wrapped: a file that is not an ONNX model (damaged, truncated) and a graph
whose inputs have a fixed first dimension (a batch axis exported as a number, which no other batch size
can run) are refused, saying so. onnx is imported only when called.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pathlib
from typing import Any

import numpy as np

from ...errors import ArgumentError, MissingDependencyError, ShapeError
from ...model.array_inputs import ArrayInputs, ArrayModel, array_inputs, dtype_name
from ...model.opaque import FLOAT_FORMATS, Outputs, as_output, format_of


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingDependencyError(f'{name} is not installed; install batchcore with its onnx extra: pip install '
                                     '"batchcore[onnx]" (onnx, ONNX Runtime\'s CPU build, onnxscript)') from e


def import_onnx() -> Any:
    """The onnx module, or MissingDependencyError saying how to install it."""
    return _import("onnx")


def import_onnxruntime() -> Any:
    """The onnxruntime module, or MissingDependencyError saying how to install it."""
    return _import("onnxruntime")


def is_onnx_object(obj: Any) -> bool:
    """Whether ``obj`` names an ONNX model: a path ending in ``.onnx``, or an ``onnx.ModelProto`` (told
    without importing onnx)."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith(".onnx")
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx")


def _load(onnx: Any, model: Any) -> tuple[Any, bytes, str | None]:
    """(the ModelProto, its serialized bytes, its path or None), checked by onnx's checker."""
    path = None
    if isinstance(model, (str, os.PathLike)):
        path = str(model)
        try:
            data = pathlib.Path(path).read_bytes()
        except OSError as e:
            raise ArgumentError(f"cannot read the ONNX model {path}: {e.strerror or e}") from e
        try:
            proto = onnx.load_model_from_string(data)
        except Exception as e:  # protobuf's DecodeError, and whatever a truncated file makes of it
            raise ArgumentError(f"{path} is not an ONNX model (damaged or another kind of file): "
                                f"{type(e).__name__}: {e}") from e
    else:
        proto, data = model, model.SerializeToString()
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ArgumentError(f"{path or 'the ONNX model'} does not pass onnx's checker: {first}") from e
    return proto, data, path


def _dims(value_info: Any) -> list[int | str]:
    """A graph input's or output's dimensions: numbers, or the names of symbolic ones ("?" when unnamed)."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value_info.type.tensor_type.shape.dim]


class OnnxModule(ArrayModel):
    """An ONNX model that batchcore runs as it is through ONNX Runtime (:func:`batchcore.onnx`).

    ``input_names``, ``input_dtypes`` (numpy dtype names) and ``input_shapes`` (per sample: numbers or the
    names of symbolic dimensions) of the graph's inputs (initializers excluded), ``output_names``;
    ``serialized``: the model's bytes, from which each backend makes its own session; ``dtype``: the format
    of its first floating input ("fp32", "fp16"), None when it takes only integers (token ids)."""

    framework = "onnx"

    def __init__(self, model: Any, name: str | None = None):
        onnx = import_onnx()
        self.proto, self.serialized, self.path = _load(onnx, model)
        graph = self.proto.graph
        self.name = name or (pathlib.Path(self.path).stem if self.path else graph.name or "onnx_model")
        initializers = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        if not inputs:
            raise ShapeError(f"{self.name} has no inputs: there is nothing to feed a batch to")
        self.input_names = [i.name for i in inputs]
        self.input_dtypes = [np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)).name
                             for i in inputs]
        self.output_names = [o.name for o in graph.output]
        shapes = [_dims(i) for i in inputs]
        for i, dims in zip(inputs, shapes, strict=True):
            if not dims:
                raise ShapeError(f"{self.name}'s input {i.name!r} is a scalar: batchcore feeds batches (rows first)")
            if isinstance(dims[0], int):
                raise ShapeError(f"{self.name}'s input {i.name!r} has a fixed batch dimension of {dims[0]} "
                                 f"(shape {dims}): no other batch size can run it. Export it with a dynamic batch "
                                 "axis (bc.export_onnx does; torch.onnx.export(..., dynamic_shapes=...))")
        self.input_shapes = [tuple(d[1:]) for d in shapes]
        floating = [format_of(d) for d in self.input_dtypes if "float" in d]
        self.dtype = floating[0] if floating and floating[0] in FLOAT_FORMATS else None

    def describe(self) -> dict[str, Any]:
        p = self.proto
        params = sum(int(np.prod(t.dims, dtype=np.int64)) for t in p.graph.initializer)
        return {"kind": "opaque module", "framework": "onnx", "name": self.name, "path": self.path,
                "producer": f"{p.producer_name} {p.producer_version}".strip(), "ir_version": int(p.ir_version),
                "opsets": {o.domain or "ai.onnx": int(o.version) for o in p.opset_import}, "dtype": self.dtype,
                "inputs": dict(zip(self.input_names, self.input_dtypes, strict=True)), "parameters": params}

    def digest(self) -> str:
        """A hash of the model's serialized bytes (graph and weights)."""
        return hashlib.sha256(self.serialized).hexdigest()[:16]

    def inputs(self, data: Any) -> ArrayInputs:
        """The user's data checked against the graph's inputs: their count (or names), element types
        exactly (nothing is converted), finite floating values, one shared first dimension."""
        return array_inputs(data, self.name, "ONNX Runtime", dict(zip(self.input_names, self.input_dtypes, strict=True)),
                            exact_integers=True)


def outputs_of(values: list[np.ndarray], names: list[str], rows: int) -> Outputs:
    """What a session returned, each output an Output named as the graph names it (bfloat16 as float32, exactly)."""
    found = []
    for name, v in zip(names, values, strict=True):
        a = np.asarray(v)
        dtype = dtype_name(a)
        found.append(as_output(name, a.astype(np.float32) if dtype == "bfloat16" else a, dtype, rows))
    return Outputs(found)

