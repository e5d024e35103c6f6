"""``bc.from_onnx``: an ONNX graph read into a :class:`~batchcore.model.graph.GraphModel`, so that the native core
runs it in named orders, batch invariant by construction.

ONNX Runtime first runs the graph on batches of 2 and 3 samples with every intermediate value exposed, to
learn each value's shape (a value that depends on the input must keep the batch first) and the values that
do not depend on the input's data: initializers, constants, and what is computed from the input's shape
alone (a shape for Reshape, position ids, a mask the same for every sample) become constants. Each
remaining node maps to operations of the core's graph (:mod:`.graph_ops`), or raises UnsupportedLayerError
naming the node, its operator and the line of the exporting code it comes from (torch's exporter records
it). The graph computes the model's first output, as the ONNX backend compares it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DTypeError, ShapeError, UnsupportedLayerError
from ...model.graph import GraphModel, GraphNode
from .graph_ops import OnnxReader
from .layout import BatchLayout
from .module import OnnxModule, import_onnx, import_onnxruntime


def _sample_shape(module: OnnxModule, input_shape: Any) -> tuple[int, ...]:
    """The input's sample shape: the graph's, its symbolic dimensions (a sequence length) given by ``input_shape``."""
    declared = module.input_shapes[0]
    if input_shape is None:
        symbolic = [d for d in declared if not isinstance(d, int)]
        if symbolic:
            example = tuple(8 if isinstance(d, str) else d for d in declared)
            raise ShapeError(f"{module.name}'s input {module.input_names[0]!r} has symbolic sample dimensions "
                             f"{declared}: pass input_shape= (one sample's shape, e.g. {example})")
        return tuple(int(d) for d in declared)
    from ... import checks

    shape = checks.shape(input_shape, "input_shape")
    if len(shape) != len(declared) or any(isinstance(d, int) and d != s for d, s in zip(declared, shape, strict=False)):
        raise ShapeError(f"input_shape={shape} does not fit {module.name}'s input {module.input_names[0]!r} of sample "
                         f"shape {declared}")
    return shape


def exposed_session(module: OnnxModule) -> tuple[Any, list[str]]:
    """An ONNX Runtime session of the graph as it is written (optimisations off) whose outputs are all its
    nodes' outputs, and their names."""
    onnx, ort = import_onnx(), import_onnxruntime()
    exposed = onnx.ModelProto()
    exposed.CopyFrom(module.proto)
    have = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend([onnx.ValueInfoProto(name=o) for n in exposed.graph.node for o in n.output
                                 if o and o not in have])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as it is written
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, [o.name for o in session.get_outputs()]


def _runs(module: OnnxModule, shape: tuple[int, ...], dtype: str) -> dict[int, dict[str, np.ndarray]]:
    """Every value the graph computes, by name, on batches of 2 and 3 samples (token ids: zeros; numbers:
    standard normal), from a session whose outputs are all its nodes' outputs."""
    session, names = exposed_session(module)
    runs = {}
    for B in (2, 3):
        rng = np.random.default_rng(B)
        x = np.zeros((B, *shape), np.int64) if dtype == "int64" else rng.standard_normal((B, *shape)).astype(np.float32)
        try:
            values = session.run(names, {module.input_names[0]: x})
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UnsupportedLayerError(f"{module.name} fails on a batch of {B} samples of shape {shape} ({dtype}): "
                                        f"{first}") from e
        runs[B] = {n: np.asarray(v) for n, v in zip(names, values, strict=True)}
        runs[B][module.input_names[0]] = x
    return runs


def from_onnx(model: Any, input_shape: Any = None, name: str | None = None) -> GraphModel:
    """Read an ONNX model (a ``.onnx`` path, an ``onnx.ModelProto``) with one input, float32 numbers or int64
    token ids, into a GraphModel; ``input_shape``: one sample's shape where the graph leaves dimensions
    other than the batch symbolic. See the module's docstring for what is read."""
    module = model if isinstance(model, OnnxModule) else OnnxModule(model, name)
    if len(module.input_names) != 1:
        raise UnsupportedLayerError(f"{module.name} takes {len(module.input_names)} inputs ({', '.join(module.input_names)}); "
                                    "a native graph takes one tensor (ONNX Runtime runs it as it is: backends=[bc.onnx()])")
    dtype = module.input_dtypes[0]
    if dtype not in ("float32", "int64"):
        raise DTypeError(f"{module.name}'s input {module.input_names[0]!r} is {dtype}; the native graph takes float32 "
                         "numbers or int64 token ids")
    shape = _sample_shape(module, input_shape)
    runs = _runs(module, shape, dtype)
    graph = module.proto.graph
    numpy_helper = import_onnx().numpy_helper
    reader = OnnxReader(runs, {t.name: numpy_helper.to_array(t) for t in graph.initializer})
    reader.nodes.append(GraphNode("input", (), {}, shape, module.input_names[0], "the input"))
    reader.ids[module.input_names[0]] = 0
    reader.layouts[module.input_names[0]] = BatchLayout(0)
    for node in graph.node:
        reader.read(node)
    output = graph.output[0].name
    if output not in reader.ids:
        raise UnsupportedLayerError(f"{module.name}'s first output {output!r} does not depend on the input")
    if not reader.layouts[output].batch_first:
        raise UnsupportedLayerError(f"{module.name}'s first output {output!r} does not hold the batch as its first "
                                    "dimension; the native graph returns one sample per row")
    if reader.ids[output] == 0:
        raise UnsupportedLayerError(f"{module.name} returns its input unchanged: there is nothing to run")
    return GraphModel(reader.nodes, reader.ids[output], source_module=module, name=module.name, input_dtype=dtype,
                      source_framework="onnx")
