"""Models: a sequence of linear and row-wise layers that every backend can run.

``mlp()`` builds one from sizes; ``batchcore.frontends.torch.chain.from_torch()`` reads an ``nn.Sequential``. A
:class:`Model` is plain data: its layers (parameters as float32 numpy arrays), its widths, its name and
the torch module it was read from, if any. What a backend runs (the core's packed copy, a torch module, a
GPU copy) is built by that backend and cached there, weakly keyed by the model.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import checks
from ..errors import ArgumentError, DTypeError, ShapeError, UnsupportedLayerError

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
LAYER_KINDS = ("linear", *ACTIVATIONS, "softmax", "layer_norm", "batch_norm")


@dataclass
class Layer:
    """One layer. ``params``: linear (weight N x K, bias N), layer_norm (weight, bias, eps),
    batch_norm (scale, shift: eval mode folded to ``x * scale + shift``)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


class Model:
    """A feed-forward model. Build it with :func:`mlp` or :func:`~batchcore.frontends.torch.chain.from_torch`.

    Plain data, never changed once made (backends cache what they build from it by its identity):
    ``layers`` (a tuple of :class:`Layer`), ``input_width`` and ``output_width`` (features per row),
    ``name``, ``source_module``: the framework's model it was read from (that framework's backends run that
    very model: the torch backend an ``nn.Module``, the Keras backend a ``keras.Model``), or None, and
    ``source_framework``: whose it is ("torch", "keras"; None without one).
    """

    def __init__(self, layers: list[Layer], input_width: int, source_module: Any = None, name: str = "model",
                 source_framework: str | None = None):
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise ShapeError(f"layers must be a list of batchcore Layers, got {layers!r}")
        layers = list(layers)
        if not layers:
            raise ShapeError("a model needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer) or not isinstance(layer.params, dict):
                raise UnsupportedLayerError(f"layer {i} is not a batchcore Layer, got {layer!r}")
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.input_width: int = checks.positive_int(input_width, "input_width", ShapeError)
        self.name = name
        self.source_module = source_module
        self.source_framework = check_source(source_module, source_framework)
        width = self.input_width
        for i, layer in enumerate(layers):
            if layer.kind not in LAYER_KINDS:
                raise UnsupportedLayerError(f"layer {i}: unknown kind {layer.kind!r}; known: {', '.join(LAYER_KINDS)}")
            if layer.kind == "linear":
                _check_linear_params(i, layer.params)
                n, k = layer.params["weight"].shape
                if k != width:
                    raise ShapeError(f"layer {i} (linear {k}->{n}) follows a layer of width {width}")
                width = n
            else:
                _check_row_params(i, layer.kind, layer.params, width)
        self.output_width: int = width

    # -- facts ----------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input row's shape, ``(input_width,)`` (as a graph model's ``input_shape``)."""
        return (self.input_width,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.output_width,)

    @property
    def widest(self) -> int:
        """The most floats any layer holds per row (the input or a linear layer's output)."""
        return max([self.input_width] + [layer.params["weight"].shape[0] for layer in self.layers
                                         if layer.kind == "linear"])

    @property
    def flops_per_row(self) -> int:
        """2 * sum of K * N over the linear layers: the FLOP count of one input row."""
        return sum(2 * layer.params["weight"].size for layer in self.layers if layer.kind == "linear")

    def min_traffic_bytes(self, batch_size: int) -> int:
        """The fewest bytes a forward pass of ``batch_size`` rows can move to and from memory: every
        parameter read once, the input read once, the output written once (float32). Activations between
        layers are assumed to stay in cache, so this is a lower bound and the roofline built on it an
        upper bound."""
        params = sum(v.size for layer in self.layers for v in layer.params.values() if isinstance(v, np.ndarray))
        return 4 * (params + batch_size * (self.input_width + self.output_width))

    def describe(self) -> str:
        """The architecture in one line, e.g. ``784 -> linear 128 -> relu -> linear 10``."""
        parts = [str(self.input_width)]
        for layer in self.layers:
            parts.append(f"linear {layer.params['weight'].shape[0]}" if layer.kind == "linear" else layer.kind)
        return " -> ".join(parts)

    def digest(self) -> str:
        """A hash of the architecture and every parameter's bits (identifies the model in result files)."""
        h = hashlib.sha256(self.describe().encode())
        for layer in self.layers:
            for key in sorted(layer.params):
                v = layer.params[key]
                h.update(key.encode())
                h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<batchcore.Model {self.name}: {self.describe()}>"


def check_source(source_module: Any, source_framework: Any) -> str | None:
    """The framework a read model's source belongs to: named (a string) exactly when there is a source."""
    if source_module is None:
        if source_framework is not None:
            raise ArgumentError(f"source_framework={source_framework!r} names the framework of a source_module; none "
                                "was given")
        return None
    if not isinstance(source_framework, str) or not source_framework:
        raise ArgumentError("a model read from a framework's module names that framework (source_framework='torch', "
                            f"'keras'), got {source_framework!r}")
    return source_framework


def _check_param(where: str, key: str, value: Any, shape: tuple[int, ...] | None, ndim: int) -> np.ndarray:
    """A parameter array: ShapeError when missing or of the wrong shape, DTypeError when not float32 (the
    classes every input check raises for the same faults)."""
    if not isinstance(value, np.ndarray) or value.ndim != ndim or 0 in value.shape or (shape and value.shape != shape):
        want = f"shape {shape}" if shape else f"a non-empty {ndim}-D shape"
        got = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise ShapeError(f"{where}: {key} must be a float32 array of {want}, got {got}")
    if value.dtype != np.float32:
        raise DTypeError(f"{where}: {key} must be float32, got {value.dtype} (nothing is converted silently)")
    return value


def _check_linear_params(i: int, params: dict[str, Any]) -> None:
    w = _check_param(f"layer {i} (linear)", "weight", params.get("weight"), None, 2)
    b = params.get("bias")
    if b is not None:
        _check_param(f"layer {i} (linear)", "bias", b, (w.shape[0],), 1)


_ROW_PARAMS = {"layer_norm": ("weight", "bias"), "batch_norm": ("scale", "shift")}


def _check_row_params(i: int, kind: str, params: dict[str, Any], width: int) -> None:
    for key in _ROW_PARAMS.get(kind, ()):
        _check_param(f"layer {i} ({kind})", key, params.get(key), (width,), 1)
    if kind == "layer_norm":
        eps = params.get("eps")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (float(eps) >= 0 and math.isfinite(float(eps))):
            raise ShapeError(f"layer {i} (layer_norm): eps must be a finite number >= 0, got {eps!r}")


def mlp(sizes: Iterable[int], activation: str = "relu", head: str | None = None, seed: int = 0,
        name: str | None = None) -> Model:
    """A multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Linear layers are initialised as PyTorch does (weights and biases uniform in +-1/sqrt(K)) from a
    numpy generator seeded with ``seed``; ``activation`` follows every hidden linear layer; ``head`` is
    ``None`` or ``"softmax"``.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ShapeError(f"mlp needs a list of at least two layer widths, got {sizes!r}")
    widths = [checks.positive_int(s, "every mlp size", ShapeError) for s in sizes]
    if len(widths) < 2:
        raise ShapeError(f"mlp needs at least two widths (inputs and outputs), got {widths}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise UnsupportedLayerError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    if head not in (None, "softmax"):
        raise UnsupportedLayerError(f"unknown head {head!r}; known: None, 'softmax'")
    seed = checks.seed(seed)
    if name is not None and not isinstance(name, str):
        raise ArgumentError(f"name must be a string, got {name!r}")
    params = sum(k * n + n for k, n in zip(widths[:-1], widths[1:], strict=False))
    # Twice: the float64 draw and its float32 copy exist at once for the largest layer.
    checks.require_allocatable(8 * params, f"an mlp of {params:,} parameters")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (k, n) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        bound = 1.0 / np.sqrt(k)
        w = rng.uniform(-bound, bound, size=(n, k)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=n).astype(np.float32)
        layers.append(Layer("linear", {"weight": w, "bias": b}))
        if i < len(widths) - 2:
            layers.append(Layer(activation))
    if head == "softmax":
        layers.append(Layer("softmax"))
    label = name or f"mlp{'-'.join(map(str, widths))}"
    return Model(layers, widths[0], name=label)
