"""PyTorch modules and batchcore models: ``from_torch`` reads an ``nn.Sequential`` into a :class:`Model`
(anything else torch.fx traces into a :class:`~batchcore.model.graph.GraphModel`),
``build_module`` makes the equivalent ``nn.Sequential`` of a model (for ``mlp`` models and the memory
child), ``module_of`` is the module the torch backend runs. torch is imported only when called."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ... import checks
from ...errors import DTypeError, MissingDependencyError, NonFiniteError, UnsupportedLayerError
from ...model.chain import ACTIVATIONS, Layer, Model
from ...model.graph import GraphModel
from .fx_trace import graph_from_torch


def import_torch() -> Any:
    """The torch module, or MissingDependencyError saying how to install it."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("torch is not installed; install it with: pip install torch==2.13.0") from e
    return torch


def module_of(model: Model | GraphModel) -> Any:
    """The module the model runs as on the CPU: the torch module it was read from, else one built from its
    parameters (a new one per call: the torch backend caches it), e.g. for a chain read from Keras."""
    if model.source_framework == "torch":
        return model.source_module
    if isinstance(model, GraphModel):
        raise UnsupportedLayerError(f"{model.name} has no torch module to run (a graph model runs in torch as the "
                                    f"torch module it was read from; its source is {model.source_framework})")
    return build_module(model)


def _f32(a: Any, what: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if not np.isfinite(arr).all():
        raise NonFiniteError(f"{what} contains NaN or Inf")
    return arr


_SUPPORTED_TORCH = "Linear, ReLU, GELU, SiLU, Tanh, Softmax, LayerNorm, BatchNorm1d, Flatten, Dropout, Identity"


def _flatten_sequential(module: Any, torch: Any) -> list[Any]:
    if isinstance(module, torch.nn.Sequential):
        out: list[Any] = []
        for child in module:
            out.extend(_flatten_sequential(child, torch))
        return out
    return [module]


def from_torch(module: Any, name: str | None = None, input_shape: Any = None,
               input_dtype: str = "float32") -> Model | GraphModel:
    """Read a float32 torch module into a batchcore model that every backend of its kind can run.

    A chain of layers (an ``nn.Sequential``, or a single layer, over rows of features) becomes a
    :class:`Model`, which every backend runs: Linear, ReLU, GELU (exact erf form), SiLU, Tanh, Softmax
    over the last dimension, LayerNorm over the last dimension, BatchNorm1d (eval: running statistics
    folded to scale and shift in float64, then rounded to float32), Flatten, Dropout and Identity.

    Anything else that ``torch.fx`` can trace (convolutions, pooling, residual connections, a custom
    ``forward``, attention, embeddings) becomes a :class:`~batchcore.model.graph.GraphModel`, which the
    native backend (CPU) and the torch backend run; it needs ``input_shape``, one sample's shape, e.g.
    ``(1, 8, 8)``, and ``input_dtype``: "float32", or "int64" for token ids (``bc.sweep`` passes its
    data's). See :mod:`batchcore.frontends.torch.fx_trace` for the operations read. What cannot
    be read raises :class:`UnsupportedLayerError` naming the node, its operation and the line of code it
    comes from. The torch backend runs this very module (in eval mode, without gradients).
    """
    torch = import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise UnsupportedLayerError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    for pname, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            # The torch backend runs this very module on float32 inputs: a float16 or float64 module
            # would fail there (or compute in another precision than every other backend).
            raise DTypeError(f"{pname} is {tensor.dtype}; batchcore runs float32 models: pass module.float()")
    name = name or type(module).__name__
    shape = None if input_shape is None else checks.shape(input_shape, "input_shape")
    try:
        chain: Model | None = _read_chain(module, torch, name)
    except UnsupportedLayerError as e:
        if shape is None:
            raise UnsupportedLayerError(f"{e}. A module other than a chain of those layers is read through torch.fx "
                                        "and needs input_shape= (one sample's shape, e.g. (1, 8, 8))") from e
        chain = None  # not a chain: read as a graph (outside this handler, so that its errors stand alone)
    if chain is None:
        assert shape is not None  # refused above
        return graph_from_torch(module, shape, name, _input_dtype(input_dtype))
    if (shape is None or shape == (chain.input_width,)) and input_dtype == "float32":
        return chain
    return graph_from_torch(module, shape or (chain.input_width,), name, _input_dtype(input_dtype))


def _input_dtype(input_dtype: Any) -> str:
    if input_dtype not in ("float32", "int64"):
        raise DTypeError(f"input_dtype must be 'float32' (numbers) or 'int64' (token ids), got {input_dtype!r}")
    return str(input_dtype)


def _read_chain(module: Any, torch: Any, name: str) -> Model:
    """An ``nn.Sequential`` (or one layer) of the layers a :class:`Model` has, or UnsupportedLayerError."""
    nn = torch.nn
    layers: list[Layer] = []
    input_width: int | None = None

    def need_width(w: int) -> None:
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
    return Model(layers, input_width, source_module=module, name=name, source_framework="torch")


def build_module(model: Model) -> Any:
    """An ``nn.Sequential`` in eval mode with the model's layers and parameters (the same layer types, so
    the same kernels and allocations as a module the user wrote that way)."""
    torch = import_torch()
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
