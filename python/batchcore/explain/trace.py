"""``bc.trace``: where in a network a row's bits part when it runs inside a batch instead of alone. For each
layer in the order it runs: the share of that row's output bits equal in the two runs and the largest ULP
distance, so the first differing layer is named and what the later layers do with the difference (a
ReLU that zeroes it, a softmax that rounds it away, a linear layer that grows it) is shown.

A torch module is traced by forward hooks on its leaf modules (its module paths); a Keras model by its
layers' intermediate outputs (a Sequential or functional model); an ONNX model on ONNX Runtime by every
node's output added to the graph's outputs (the graph as written: ONNX Runtime cannot fuse nodes whose
outputs are exposed); a batchcore model on the native core by running each prefix of its graph (the native
core is batch invariant, so every layer shows zero). A value that does not keep the batch first (attention's
internals) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import checks
from ..errors import ArgumentError
from ..model.chain import Model
from ..model.graph import GraphModel
from ..model.opaque import OpaqueModel
from ..results.numerics import max_ulp


@dataclass
class Trace:
    """What :func:`trace` found: per layer in run order, ``layers`` = [{"layer", "kind", "bits_equal_frac",
    "max_ulp"}], for row ``row`` alone and inside a batch of ``batch_size`` on ``backend``."""

    backend: str
    batch_size: int
    row: int
    layers: list[dict[str, Any]]

    @property
    def first_differing(self) -> str | None:
        """The first layer whose output bits for the row differ between the two runs, or None."""
        return next((entry["layer"] for entry in self.layers if entry["bits_equal_frac"] < 1.0), None)

    def table(self) -> str:
        width = max([len(e["layer"]) for e in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'kind':<24} {'=bits':>7} {'max ULP':>9}"]
        lines += [f"{e['layer']:<{width}}  {e['kind']:<24} {e['bits_equal_frac']:>7.4f} {e['max_ulp']:>9}"
                  for e in self.layers]
        first = self.first_differing
        lines.append(f"{self.backend}, row {self.row} alone vs in a batch of {self.batch_size}: "
                     + (f"the bits first part at {first}" if first else "the same bits after every layer"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _entry(layer: str, kind: str, alone: np.ndarray, inside: np.ndarray) -> dict[str, Any]:
    a, b = np.ascontiguousarray(alone, np.float32), np.ascontiguousarray(inside, np.float32)
    equal = float((a.view(np.uint32) == b.view(np.uint32)).mean()) if a.size else 1.0
    return {"layer": layer, "kind": kind, "bits_equal_frac": equal, "max_ulp": max_ulp(a, b)}


def _torch_trace(module: Any, data: np.ndarray, B: int, row: int) -> list[dict[str, Any]]:
    import torch

    leaves = [(name, m) for name, m in module.named_modules() if name and not any(True for _ in m.children())]
    if not leaves:
        raise ArgumentError(f"{type(module).__name__} has no submodules to trace")
    seen: list[tuple[str, str, Any]] = []

    def hook(name: str) -> Any:
        def record(m: Any, inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                seen.append((name, type(m).__name__, out.detach().float().cpu().numpy().copy()))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in leaves]
    try:
        with torch.no_grad():
            seen.clear()
            module(torch.from_numpy(data[row:row + 1]))
            alone = list(seen)
            seen.clear()
            module(torch.from_numpy(data[:B]))
            inside = list(seen)
    finally:
        for h in handles:
            h.remove()
    return _paired(alone, inside, B, row)


def _paired(alone: list[tuple[str, str, Any]], inside: list[tuple[str, str, Any]], B: int,
            row: int) -> list[dict[str, Any]]:
    """Entries for the layers whose outputs in the two runs keep the batch first (1 and B rows)."""
    entries = []
    for (name, kind, a), (name_b, _, b) in zip(alone, inside, strict=False):
        a, b = np.asarray(a), np.asarray(b)
        if name != name_b or a.shape[:1] != (1,) or b.shape[:1] != (B,) or a.shape[1:] != b.shape[1:] or \
                a.dtype.kind != "f":
            continue  # a value that does not keep the batch first (attention's internals): not comparable
        entries.append(_entry(name, kind, a[0], b[row]))
    return entries


def _keras_trace(model: Any, data: np.ndarray, B: int, row: int) -> list[dict[str, Any]]:
    from ..frontends.keras.module import import_keras

    keras = import_keras()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # one input: the tensor itself
        probe = keras.Model(inputs, [layer.output for layer in layers])
    except Exception as e:
        raise ArgumentError(f"bc.trace reads a Keras model's intermediate outputs, which {model.name!r} does not "
                            f"expose (a subclassed model?): {type(e).__name__}: {e}") from e

    def run(x: np.ndarray) -> list[tuple[str, str, Any]]:
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [(layer.name, type(layer).__name__, keras.ops.convert_to_numpy(o)) for layer, o in zip(layers, outs, strict=True)]

    return _paired(run(data[row:row + 1]), run(data[:B]), B, row)


def _onnx_trace(model: Any, data: np.ndarray, B: int, row: int) -> list[dict[str, Any]]:
    from ..frontends.onnx.graph import exposed_session
    from ..frontends.onnx.module import OnnxModule

    module = model if isinstance(model, OnnxModule) else OnnxModule(model)
    session, names = exposed_session(module)
    nodes = [(n.output[0], n.name or n.op_type, n.op_type) for n in module.proto.graph.node if n.output and n.output[0]]

    def run(x: np.ndarray) -> list[tuple[str, str, Any]]:  # each node's first output, in the graph's order
        values = dict(zip(names, session.run(names, {module.input_names[0]: x}), strict=True))
        return [(name, kind, values[out]) for out, name, kind in nodes]

    return _paired(run(data[row:row + 1]), run(data[:B]), B, row)


def _native_trace(model: Model | GraphModel, data: np.ndarray, B: int, row: int, backend: Any) -> list[dict[str, Any]]:
    prefixes: list[tuple[str, str, Model | GraphModel]]
    if isinstance(model, Model):
        prefixes = [(f"layer {i}", model.layers[i].kind, Model(list(model.layers[:i + 1]), model.input_width, name=model.name))
                    for i in range(len(model.layers))]
    else:
        prefixes = [(f"%{i} {n.name}", n.params.get("name") or n.op, GraphModel(list(model.nodes[:i + 1]), i, name=model.name,
                                                                           input_dtype=model.input_dtype))
                    for i, n in enumerate(model.nodes) if i and n.op != "constant"]
    return [_entry(name, kind, backend.run(part, data[row:row + 1])[0], backend.run(part, data[:B])[row])
            for name, kind, part in prefixes]


def trace(model: Any, data: Any, batch_size: int, backend: Any = None, row: int = 0) -> Trace:
    """Row ``row`` of ``data`` run alone and inside the batch ``data[:batch_size]``: per layer, the share of
    its output bits equal in the two runs and the largest ULP distance (see the module's docstring).
    ``model``: a torch module (``backend`` None or ``bc.torch()``), or a batchcore model (``backend``:
    ``bc.native(...)``, the default for one)."""
    B = checks.positive_int(batch_size, "batch_size")
    x = np.ascontiguousarray(data)
    if x.ndim < 2 or len(x) < B:
        raise ArgumentError(f"data must hold at least batch_size = {B} rows, got shape {x.shape}")
    if not 0 <= row < B:
        raise ArgumentError(f"row {row} must lie in the batch of {B} rows")
    if isinstance(model, (Model, GraphModel)):
        from ..backends import native

        backend = backend or native()
        return Trace(backend.label, B, row, _native_trace(model, x, B, row, backend))
    from ..frontends import frontend_of

    try:
        framework = frontend_of(model).name
    except ArgumentError:
        framework = None
    tracers = {"keras": ("keras", _keras_trace), "onnx": ("onnx[cpu,opt=disabled]", _onnx_trace),
               "torch": ("torch[cpu]", _torch_trace)}
    if framework not in tracers or (framework == "torch" and not hasattr(model, "named_modules")):
        raise ArgumentError(f"bc.trace traces torch modules, Keras models, ONNX models and batchcore models; "
                            f"{type(model).__name__} is none of them")
    assert framework is not None
    label, tracer = tracers[framework]
    if backend is not None and getattr(backend, "name", None) != framework:
        raise ArgumentError(f"a {framework} model is traced on {framework} (backend None), not {backend.label}")
    return Trace(label, B, row, tracer(model, x, B, row))


def trace_backend(model: Any, data: Any, batch_size: int, backend: Any, row: int = 0) -> Trace:
    """:func:`trace` of what ``backend`` ran in a sweep of ``model`` (a batchcore model, or a module run as it
    is): the batchcore model on the native core; on torch, Keras or ONNX Runtime the framework's own model
    (the one a read model came from, or the module itself). ArgumentError for the other backends."""
    name = getattr(backend, "name", None)
    if name == "native":
        if not isinstance(model, (Model, GraphModel)):
            raise ArgumentError(f"{backend.label} ran no batchcore model here")
        return trace(model, data, batch_size, backend, row)
    source = model.source_module if isinstance(model, (Model, GraphModel)) else model
    if isinstance(source, OpaqueModel) and source.framework != "onnx":  # a wrapped module: the framework's own
        source = getattr(source, "module", None) or getattr(source, "model", None)
    framework = getattr(model, "source_framework", None) if isinstance(model, (Model, GraphModel)) else \
        getattr(model, "framework", None)
    if name not in ("torch", "keras", "onnx") or source is None or framework != name:
        raise ArgumentError(f"{backend.label} cannot be traced here: bc.trace traces the native core on a batchcore "
                            "model, and torch, Keras and ONNX Runtime on a model of their own framework")
    return trace(source, data, batch_size, row=row)
