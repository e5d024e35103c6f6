"""Models: a sequence of linear and row-wise layers that every backend can run.

``mlp()`` builds one from sizes; ``from_torch()`` reads an ``nn.Sequential``. A :class:`Model` keeps its
parameters as float32 numpy arrays, builds the native core model once, and knows the torch module to
run (the very module given to ``from_torch``, or an equivalent one built for ``mlp``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _core, checks
from .errors import (
    ArgumentError,
    DeviceUnavailableError,
    DTypeError,
    MissingDependencyError,
    NonFiniteError,
    ShapeError,
    UnsupportedLayerError,
)

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
LAYER_KINDS = ("linear", *ACTIVATIONS, "softmax", "layer_norm", "batch_norm")


@dataclass
class Layer:
    """One layer. ``params``: linear (weight N x K, bias N), layer_norm (weight, bias, eps),
    batch_norm (scale, shift: eval mode folded to ``x * scale + shift``)."""

    kind: str
    params: dict = field(default_factory=dict)


def _f32(a, what: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if not np.isfinite(arr).all():
        raise NonFiniteError(f"{what} contains NaN or Inf")
    return arr


class Model:
    """A feed-forward model. Build it with :func:`mlp` or :func:`from_torch`."""

    def __init__(self, layers: list[Layer], input_width: int, torch_module=None, name: str = "model"):
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise ShapeError(f"layers must be a list of batchcore Layers, got {layers!r}")
        layers = list(layers)
        if not layers:
            raise ShapeError("a model needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer) or not isinstance(layer.params, dict):
                raise UnsupportedLayerError(f"layer {i} is not a batchcore Layer, got {layer!r}")
        self.layers = layers
        self.input_width = checks.positive_int(input_width, "input_width", ShapeError)
        self.name = name
        self._torch_module = torch_module
        self._native: _core.Model | None = None
        self._device_copies: dict = {}  # ("cuda", index) -> DeviceModel, ("torch", device) -> module
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
        self.output_width = width

    # -- facts ----------------------------------------------------------------------------------------
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

    # -- the native core's model (built once) ---------------------------------------------------------
    def native_model(self) -> _core.Model:
        if self._native is None:
            m = _core.Model(self.input_width)
            for layer in self.layers:
                p = layer.params
                if layer.kind == "linear":
                    m.add_linear(p["weight"], p["bias"])
                elif layer.kind in ACTIVATIONS:
                    m.add_activation(layer.kind)
                elif layer.kind == "softmax":
                    m.add_softmax()
                elif layer.kind == "layer_norm":
                    m.add_layer_norm(p["weight"], p["bias"], float(p["eps"]))
                elif layer.kind == "batch_norm":
                    m.add_affine(p["scale"], p["shift"])
            self._native = m
        return self._native

    def cuda_model(self, index: int = 0):
        """The native model's copy on CUDA device ``index`` (built once; DeviceUnavailableError without it)."""
        key = ("cuda", index)
        if key not in self._device_copies:
            from .info import cuda_module

            cu = cuda_module()
            if cu is None:
                raise DeviceUnavailableError("batchcore was built without CUDA: no GPU model can be made")
            self._device_copies[key] = cu.DeviceModel(self.native_model(), index)
        return self._device_copies[key]

    # -- the torch module ------------------------------------------------------------------------------
    def torch_module(self, device: str = "cpu"):
        """The torch module this model runs as: the one given to ``from_torch``, or an equivalent
        ``nn.Sequential`` built (once) from the parameters; on another device, a copy moved there once."""
        if self._torch_module is None:
            self._torch_module = _build_torch_module(self)
        if device == "cpu":
            return self._torch_module
        key = ("torch", device)
        if key not in self._device_copies:
            import copy

            self._device_copies[key] = copy.deepcopy(self._torch_module).to(device).eval()
        return self._device_copies[key]


def _check_linear_params(i: int, params: dict) -> None:
    w, b = params.get("weight"), params.get("bias")
    if not isinstance(w, np.ndarray) or w.dtype != np.float32 or w.ndim != 2 or 0 in w.shape:
        raise ShapeError(f"layer {i} (linear): weight must be a non-empty 2-D float32 array (N, K), got "
                         f"{type(w).__name__}{'' if not isinstance(w, np.ndarray) else f' {w.dtype} {w.shape}'}")
    if b is not None and (not isinstance(b, np.ndarray) or b.dtype != np.float32 or b.shape != (w.shape[0],)):
        raise ShapeError(f"layer {i} (linear): bias must be None or a float32 array of shape ({w.shape[0]},)")


_ROW_PARAMS = {"layer_norm": ("weight", "bias"), "batch_norm": ("scale", "shift")}


def _check_row_params(i: int, kind: str, params: dict, width: int) -> None:
    for key in _ROW_PARAMS.get(kind, ()):
        v = params.get(key)
        if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.shape != (width,):
            raise ShapeError(f"layer {i} ({kind}): {key} must be a float32 array of shape ({width},)")
    if kind == "layer_norm":
        eps = params.get("eps")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (float(eps) >= 0 and math.isfinite(float(eps))):
            raise ShapeError(f"layer {i} (layer_norm): eps must be a finite number >= 0, got {eps!r}")


def _import_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("torch is not installed; install it with: pip install torch==2.13.0") from e
    return torch


def mlp(sizes, activation: str = "relu", head: str | None = None, seed: int = 0, name: str | None = None) -> Model:
    """A multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Linear layers are initialised as PyTorch does (weights and biases uniform in +-1/sqrt(K)) from a
    numpy generator seeded with ``seed``; ``activation`` follows every hidden linear layer; ``head`` is
    ``None`` or ``"softmax"``.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ShapeError(f"mlp needs a list of at least two layer widths, got {sizes!r}")
    sizes = [checks.positive_int(s, "every mlp size", ShapeError) for s in sizes]
    if len(sizes) < 2:
        raise ShapeError(f"mlp needs at least two sizes (inputs and outputs), got {sizes}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise UnsupportedLayerError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    if head not in (None, "softmax"):
        raise UnsupportedLayerError(f"unknown head {head!r}; known: None, 'softmax'")
    seed = checks.seed(seed)
    if name is not None and not isinstance(name, str):
        raise ArgumentError(f"name must be a string, got {name!r}")
    params = sum(k * n + n for k, n in zip(sizes[:-1], sizes[1:]))
    # Twice: the float64 draw and its float32 copy exist at once for the largest layer.
    checks.require_allocatable(8 * params, f"an mlp of {params:,} parameters")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / np.sqrt(k)
        w = rng.uniform(-bound, bound, size=(n, k)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=n).astype(np.float32)
        layers.append(Layer("linear", {"weight": w, "bias": b}))
        if i < len(sizes) - 2:
            layers.append(Layer(activation))
    if head == "softmax":
        layers.append(Layer("softmax"))
    label = name or f"mlp{'-'.join(map(str, sizes))}"
    return Model(layers, sizes[0], name=label)


# --------------------------------------------------------------------------------------------------
# torch interop
# --------------------------------------------------------------------------------------------------

_SUPPORTED_TORCH = "Linear, ReLU, GELU, SiLU, Tanh, Softmax, LayerNorm, BatchNorm1d, Flatten, Dropout, Identity"


def _flatten_sequential(module, torch):
    if isinstance(module, torch.nn.Sequential):
        out = []
        for child in module:
            out.extend(_flatten_sequential(child, torch))
        return out
    return [module]


def from_torch(module, name: str | None = None) -> Model:
    """Read an ``nn.Sequential`` (or a single supported layer) into a :class:`Model`.

    Supported: Linear, ReLU, GELU (exact erf form), SiLU, Tanh, Softmax over the last dimension,
    LayerNorm over the last dimension, BatchNorm1d (eval: running statistics folded to scale and shift
    in float64, then rounded to float32), Flatten and Dropout (no-ops on 2-D inputs in eval mode).
    Anything else raises :class:`UnsupportedLayerError` naming the layer. The torch backend runs this
    very module (in eval mode, without gradients).
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise UnsupportedLayerError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    for pname, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            # The torch backend runs this very module on float32 inputs: a float16 or float64 module
            # would fail there (or compute in another precision than every other backend).
            raise DTypeError(f"{pname} is {tensor.dtype}; batchcore runs float32 models: pass module.float()")
    layers: list[Layer] = []
    input_width = None

    def need_width(w):
        nonlocal input_width
        if input_width is None:
            input_width = int(w)

    for i, m in enumerate(_flatten_sequential(module, torch)):
        where = f"layer {i} ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            need_width(m.in_features)
            w = _f32(m.weight.detach().cpu().numpy(), f"{where} weight")
            b = _f32(m.bias.detach().cpu().numpy(), f"{where} bias") if m.bias is not None else None
            layers.append(Layer("linear", {"weight": w, "bias": b}))
        elif isinstance(m, nn.ReLU):
            layers.append(Layer("relu"))
        elif isinstance(m, nn.GELU):
            if m.approximate != "none":
                raise UnsupportedLayerError(f"{where}: GELU(approximate={m.approximate!r}) is not supported, only 'none'")
            layers.append(Layer("gelu"))
        elif isinstance(m, nn.SiLU):
            layers.append(Layer("silu"))
        elif isinstance(m, nn.Tanh):
            layers.append(Layer("tanh"))
        elif isinstance(m, nn.Softmax):
            if m.dim not in (-1, 1):
                raise UnsupportedLayerError(f"{where}: Softmax(dim={m.dim}) is not supported, only the last dimension")
            layers.append(Layer("softmax"))
        elif isinstance(m, nn.LayerNorm):
            if len(m.normalized_shape) != 1:
                raise UnsupportedLayerError(f"{where}: LayerNorm over {tuple(m.normalized_shape)} is not supported")
            n = m.normalized_shape[0]
            need_width(n)
            g = m.weight.detach().cpu().numpy() if m.weight is not None else np.ones(n)
            b = m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(n)
            layers.append(Layer("layer_norm", {"weight": _f32(g, where), "bias": _f32(b, where), "eps": float(m.eps)}))
        elif isinstance(m, nn.BatchNorm1d):
            if m.running_mean is None or m.running_var is None:
                raise UnsupportedLayerError(f"{where}: BatchNorm1d without running statistics cannot run in eval mode")
            need_width(m.num_features)
            mean = m.running_mean.detach().cpu().double().numpy()
            var = m.running_var.detach().cpu().double().numpy()
            g = m.weight.detach().cpu().double().numpy() if m.weight is not None else np.ones_like(mean)
            b = m.bias.detach().cpu().double().numpy() if m.bias is not None else np.zeros_like(mean)
            scale = g / np.sqrt(var + m.eps)
            layers.append(Layer("batch_norm", {"scale": _f32(scale, where), "shift": _f32(b - mean * scale, where)}))
        elif isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
            if isinstance(m, nn.Flatten) and (m.start_dim != 1 or m.end_dim != -1):
                raise UnsupportedLayerError(f"{where}: only Flatten(start_dim=1) is supported")
            continue
        else:
            raise UnsupportedLayerError(f"{where} is not supported; supported layers: {_SUPPORTED_TORCH}")
    if input_width is None or not layers:
        raise UnsupportedLayerError("the module has no layer that fixes the input width (Linear, LayerNorm, BatchNorm1d)")
    return Model(layers, input_width, torch_module=module, name=name or type(module).__name__)


def _build_torch_module(model: Model):
    torch = _import_torch()
    nn = torch.nn
    mods = []
    with torch.no_grad():
        for layer in model.layers:
            p = layer.params
            if layer.kind == "linear":
                n, k = p["weight"].shape
                lin = nn.Linear(k, n, bias=p["bias"] is not None)
                lin.weight.copy_(torch.from_numpy(p["weight"]))
                if p["bias"] is not None:
                    lin.bias.copy_(torch.from_numpy(p["bias"]))
                mods.append(lin)
            elif layer.kind in ACTIVATIONS:
                mods.append({"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}[layer.kind]())
            elif layer.kind == "softmax":
                mods.append(nn.Softmax(dim=-1))
            elif layer.kind == "layer_norm":
                ln = nn.LayerNorm(p["weight"].shape[0], eps=p["eps"])
                ln.weight.copy_(torch.from_numpy(p["weight"]))
                ln.bias.copy_(torch.from_numpy(p["bias"]))
                mods.append(ln)
            elif layer.kind == "batch_norm":
                n = p["scale"].shape[0]
                bn = nn.BatchNorm1d(n, eps=0.0)
                bn.weight.copy_(torch.from_numpy(p["scale"]))
                bn.bias.copy_(torch.from_numpy(p["shift"]))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                mods.append(bn)
    return nn.Sequential(*mods).eval()
