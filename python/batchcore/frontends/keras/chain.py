"""``from_keras``: a Keras 3 model read into batchcore: a ``Sequential`` of row-wise layers into a chain
:class:`Model`, which every backend runs (the native core in a named order, torch as an equivalent
``nn.Sequential``, the Keras backends as the very model read); anything else into a graph model
(:mod:`.graph`). Keras is imported only when called.

Keras keeps a Dense kernel as (inputs, outputs); batchcore's linear weight is (outputs, inputs), so the
kernel is transposed (an exact copy of every bit). BatchNormalization is folded to ``x * scale + shift``
in float64 from its moving statistics, then rounded to float32, as ``from_torch`` folds BatchNorm1d.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ArgumentError, DTypeError, NonFiniteError, UnsupportedLayerError
from ...model.chain import Layer, Model
from ...model.graph import GraphModel
from .graph import graph_from_keras
from .module import folded_batch_norm, import_keras, to_numpy

# Keras's name of an activation -> the chain's layer (None: the identity)
_ACTIVATIONS = {"linear": None, "relu": "relu", "gelu": "gelu", "silu": "silu", "swish": "silu", "tanh": "tanh",
                "softmax": "softmax"}
_SUPPORTED = ("InputLayer, Dense, Activation, ReLU (plain), Softmax (last axis), LayerNormalization and "
              "BatchNormalization (last axis), Dropout, Flatten of rows; activations: " + ", ".join(_ACTIVATIONS))


def _f32(keras: Any, v: Any, where: str) -> np.ndarray:
    arr = np.ascontiguousarray(to_numpy(keras, v), dtype=np.float32)
    if not np.isfinite(arr).all():
        raise NonFiniteError(f"{where} contains NaN or Inf")
    return arr


def _activation(keras: Any, fn: Any, where: str) -> str | None:
    name = keras.activations.serialize(fn)
    name = name if isinstance(name, str) else str(name)
    if name not in _ACTIVATIONS:
        raise UnsupportedLayerError(f"{where}: activation {name!r} is not read; from_keras reads {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _last_axis(layer: Any, where: str) -> None:
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if list(axis) not in ([-1], [1]):
        raise UnsupportedLayerError(f"{where}: only the last axis of rows is read, got axis={layer.axis}")


def _declared_shape(model: Any) -> tuple[Any, ...] | None:
    """One sample's shape as the model declares it (a functional or Sequential model), else None."""
    try:
        return tuple(model.inputs[0].shape[1:]) if model.inputs else None
    except (AttributeError, ValueError, TypeError):
        return None


def from_keras(model: Any, name: str | None = None, input_shape: Any = None) -> Model | GraphModel:
    """Read a float32 Keras 3 model into a batchcore model.

    A ``Sequential`` of row-wise layers over rows of features becomes a :class:`Model` that every backend
    runs: Dense (with any read activation), Activation, ReLU (no max_value, slope or threshold), Softmax
    over the last axis, LayerNormalization and BatchNormalization over the last axis (BatchNormalization in
    inference form), Dropout, and Flatten over rows. Activations: linear, relu, gelu (Keras's exact erf
    form), silu/swish, tanh, softmax.

    Anything else of one input and one output (a CNN, a functional model with residual connections, nested
    models, a subclassed model whose ``call`` can be traced on a symbolic input of ``input_shape``) becomes
    a :class:`~batchcore.model.graph.GraphModel`, which the native core (CPU) and the Keras backends run:
    see :mod:`batchcore.frontends.keras.graph` for the layers read. ``input_shape``: one sample's shape
    (``bc.sweep`` passes its data's), checked against the model's where it declares one.

    The Keras backends run this very model; the native core runs its layers in named orders. What is not
    read raises :class:`UnsupportedLayerError` naming the layer (its name and class).
    """
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise UnsupportedLayerError(f"from_keras needs a keras.Model, got {type(model).__name__}")
    label = name or model.name
    if not model.built:
        raise ArgumentError(f"{label} is not built, so its weights do not exist yet: give it a keras.Input(shape) "
                            "or call it once on a batch")
    shape = _declared_shape(model)
    given = None if input_shape is None else tuple(int(d) for d in input_shape)
    if shape is not None and given is not None and given != shape:
        raise ArgumentError(f"{label} takes samples of shape {shape}; the data's samples have shape {given}")
    if shape is None:
        return _traced(keras, model, label, given)
    if isinstance(model, keras.Sequential) and len(shape) == 1 and shape[0] is not None:
        try:
            return _read_chain(keras, model, label, int(shape[0]))
        except UnsupportedLayerError:
            pass  # not a chain of row-wise layers: the graph reader reads more, and names what it cannot
    return graph_from_keras(keras, model, label)


def _traced(keras: Any, model: Any, label: str, shape: tuple[int, ...] | None) -> GraphModel:
    """A subclassed model read through a functional model of its own layers: its ``call`` run on a symbolic
    input of one sample's ``shape`` records each layer it calls (the weights are the model's own)."""
    if shape is None:
        raise UnsupportedLayerError(f"{label} is a subclassed model ({type(model).__name__}): from_keras reads it by "
                                    "tracing its call, which needs input_shape= (one sample's shape)")
    symbolic = keras.Input(shape)
    try:
        functional = keras.Model(symbolic, model.call(symbolic))
    except Exception as e:
        raise UnsupportedLayerError(f"{label} ({type(model).__name__}): its call could not be traced on a symbolic "
                                    f"input of shape {shape} ({type(e).__name__}: {e}); run it as it is with "
                                    "backends=[bc.keras()]") from e
    return graph_from_keras(keras, functional, label, source=model)


def _read_chain(keras: Any, model: Any, label: str, width: int) -> Model:
    layers: list[Layer] = []
    for i, layer in enumerate(model.layers):
        where = f"layer {i} {layer.name!r} ({type(layer).__name__})"
        compute = str(layer.dtype_policy.compute_dtype)
        if compute != "float32" or getattr(layer.dtype_policy, "quantization_mode", None):
            raise DTypeError(f"{where} computes in {compute} (policy {layer.dtype_policy.name}); from_keras reads float32 "
                             "models: run it as it is with backends=[bc.keras()], which compares it in its own format")
        layers.extend(_read_layer(keras, layer, where))
    if not layers:
        raise UnsupportedLayerError(f"{label} has no layer to run")
    return Model(layers, width, source_module=model, name=label, source_framework="keras")


def _read_layer(keras: Any, layer: Any, where: str) -> list[Layer]:
    kl = keras.layers
    if isinstance(layer, kl.Dense):
        if getattr(layer, "lora_enabled", False):
            raise UnsupportedLayerError(f"{where}: a Dense layer with LoRA is not read")
        w = _f32(keras, layer.kernel, f"{where} kernel").T.copy()
        b = _f32(keras, layer.bias, f"{where} bias") if layer.use_bias else None
        act = _activation(keras, layer.activation, where)
        return [Layer("linear", {"weight": w, "bias": b})] + ([Layer(act)] if act else [])
    if isinstance(layer, kl.Activation):
        act = _activation(keras, layer.activation, where)
        return [Layer(act)] if act else []
    if isinstance(layer, kl.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            raise UnsupportedLayerError(f"{where}: ReLU with max_value, negative_slope or threshold is not read")
        return [Layer("relu")]
    if isinstance(layer, kl.Softmax):
        _last_axis(layer, where)
        return [Layer("softmax")]
    if isinstance(layer, kl.LayerNormalization):
        _last_axis(layer, where)
        if getattr(layer, "rms_scaling", False):
            raise UnsupportedLayerError(f"{where}: LayerNormalization(rms_scaling=True) is not read")
        n = int(layer.gamma.shape[0]) if layer.scale else int(layer.beta.shape[0])
        g = _f32(keras, layer.gamma, where) if layer.scale else np.ones(n, np.float32)
        b = _f32(keras, layer.beta, where) if layer.center else np.zeros(n, np.float32)
        return [Layer("layer_norm", {"weight": g, "bias": b, "eps": float(layer.epsilon)})]
    if isinstance(layer, kl.BatchNormalization):
        _last_axis(layer, where)
        scale, shift = folded_batch_norm(keras, layer)
        return [Layer("batch_norm", {"scale": _f32(keras, scale, where), "shift": _f32(keras, shift, where)})]
    if isinstance(layer, (kl.Dropout, kl.Flatten, kl.InputLayer)):
        return []  # the identity at inference, over rows
    raise UnsupportedLayerError(f"{where} is not read; from_keras reads {_SUPPORTED}")
