"""One linear layer (weight N x K, no bias) in a form the backend under study runs: a batchcore chain model
(the native core, NumPy, CuPy, torch), an ONNX graph (ONNX Runtime), a JAX function (XLA) or a Keras model
(TensorFlow). The backend says which it runs (``Backend.runs``); the first form it runs is used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import ArgumentError, MissingDependencyError
from ..model.chain import Layer, Model
from ..model.opaque import OpaqueModel


def linear(params: dict[str, Any], x: Any) -> Any:
    """The layer as a JAX function (at the top level: it may be sent to another process)."""
    return x @ params["w"].T


def _onnx_layer(weight: np.ndarray) -> Any:
    from ..frontends.onnx.module import OnnxModule, import_onnx

    onnx = import_onnx()
    h, T = onnx.helper, onnx.TensorProto
    graph = h.make_graph([h.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "reveal",
                         [h.make_tensor_value_info("x", T.FLOAT, ["batch", weight.shape[1]])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["batch", weight.shape[0]])],
                         [onnx.numpy_helper.from_array(weight, "w")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 9
    return OnnxModule(model, "reveal")


def _jax_layer(weight: np.ndarray) -> Any:
    from ..frontends.jax.module import JaxModel

    return JaxModel(linear, {"w": weight}, "reveal")


def _keras_layer(weight: np.ndarray) -> Any:
    from ..frontends.keras import KerasFrontend
    from ..frontends.keras.module import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((weight.shape[1],)), keras.layers.Dense(weight.shape[0], use_bias=False)],
                             name="reveal")
    model.layers[0].set_weights([np.ascontiguousarray(weight.T)])
    return KerasFrontend().wrap(model)


def _forms(weight: np.ndarray) -> Iterator[Any]:
    """The layer's forms, cheapest first, each made only when the one before is not run."""
    yield Model([Layer("linear", {"weight": weight, "bias": np.zeros(len(weight), np.float32)})], weight.shape[1],
                name="reveal")
    for make in (_onnx_layer, _jax_layer, _keras_layer):
        try:
            yield make(weight)
        except MissingDependencyError:
            continue


def layer_for(backend: Any, weight: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function x (M x K float32) -> the layer's output (M x N float32) on ``backend``; ArgumentError
    naming the backend when it runs none of the forms (or, duck-typed, an object with ``run(model, x)``)."""
    if not hasattr(backend, "runs"):  # a stand-in library (tests plant one): it runs chain models
        model = next(_forms(weight))
        return lambda x: backend.run(model, x)
    for form in _forms(weight):
        if backend.runs(form):
            return _caller(backend, form)
    raise ArgumentError(f"{getattr(backend, 'label', backend)!r} runs none of the forms a linear layer is revealed in "
                        "(a batchcore model, an ONNX graph, a JAX function, a Keras model)")


def _caller(backend: Any, form: Any) -> Callable[[np.ndarray], np.ndarray]:
    def call(x: np.ndarray) -> np.ndarray:
        if isinstance(form, OpaqueModel):  # run as it is: its first output
            return np.asarray(backend.run_module(form, x, len(x))[0].values, np.float32)
        return np.asarray(backend.run(form, x))

    return call
