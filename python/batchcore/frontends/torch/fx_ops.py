"""The reader of a traced module's nodes (:mod:`batchcore.frontends.torch.fx_trace` drives it): each torch operation it
knows becomes one or more operations of a :class:`~batchcore.model.graph.GraphModel`; what it does not
know raises UnsupportedLayerError naming the node, its operation and the user's line of code."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import NonFiniteError, UnsupportedLayerError
from ...model.graph import GraphNode
from ..one_d import as_one_row, height_one
from ..resampling import nearest_upsample, transposed_conv_params

SUPPORTED = ("Linear, Conv1d, Conv2d, ConvTranspose1d/2d, Upsample and interpolate (nearest, whole factors), "
             "BatchNorm1d/2d (eval), LayerNorm (last dimension), MaxPool1d/2d, AvgPool1d/2d, "
             "AdaptiveAvgPool2d, Flatten, Embedding, ReLU, ReLU6, GELU (erf and tanh), SiLU, Tanh, Sigmoid, Hardsigmoid, "
             "Hardswish, Mish, LeakyReLU, ELU, Softmax and "
             "LogSoftmax (any sample dimension), "
             "MultiheadAttention, TransformerEncoderLayer, TransformerEncoder (batch_first), "
             "scaled_dot_product_attention, Dropout, Identity, + - * / (broadcasting), reshape/view/flatten, "
             "permute/transpose, contiguous, sum/mean over one dimension, x[:, 0] of a dimension of 1")


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _f32(t: Any, what: str) -> np.ndarray:
    a = np.array(t.detach().cpu().numpy(), dtype=np.float32, order="C")  # keeps a 0-d tensor 0-d
    if not np.isfinite(a).all():
        raise NonFiniteError(f"{what} contains NaN or Inf")
    return a


def _where(node: Any) -> str:
    """The line of the user's code a node comes from (the last recorded frame outside torch), else its
    module path."""
    import torch

    inside_torch = os.path.dirname(torch.__file__)
    lines = (node.meta.get("stack_trace") or "").splitlines()
    frames = [(f.strip(), code.strip()) for f, code in zip(lines, lines[1:] + [""], strict=False)
              if f.strip().startswith('File "') and inside_torch not in f]
    if frames:
        frame, code = frames[-1]
        m = re.match(r'File "(.*)", line (\d+), in (.*)', frame)
        place = f"{m.group(1)}:{m.group(2)} in {m.group(3)}" if m else frame
        return f"{place} ({code})" if code and not code.startswith("File ") else place
    return f"module {node.target!r}" if node.op == "call_module" else "the traced forward"


def _describe(node: Any) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", repr(node.target))
    return f"node {node.name!r} ({node.op} {target})"


class FxReader:
    """One pass over a traced graph's nodes, in order (see :func:`batchcore.frontends.torch.fx_trace.graph_from_torch`)."""

    def __init__(self, torch: Any, gm: Any, shapes: dict[Any, tuple[int, ...]]):
        self.torch, self.gm, self.shapes = torch, gm, shapes
        self.nodes: list[GraphNode] = []
        self.ids: dict[Any, int] = {}                  # fx node -> graph node (values that depend on the input)
        self.consts: dict[Any, Any] = {}               # fx node -> its value (tensors and numbers that do not)
        self.tuples: dict[Any, list[int | None]] = {}  # fx node -> the graph nodes of a tuple's items (None: unread)
        self.merged: dict[Any, int] = {}               # fx node -> the graph node of a value with batch and rows merged
        self.node: Any = None                          # the fx node being read

    # -- what each kind of traced graph reads its own way ----------------------------------------------
    def read_node(self, node: Any) -> int:  # pragma: no cover - abstract
        """The graph node of a batch-first value ``node`` makes."""
        raise NotImplementedError

    def makes_a_tuple(self, node: Any) -> bool:
        """Whether ``node`` makes a tuple of values (read into ``tuples``)."""
        return False

    def is_shape_read(self, node: Any) -> bool:
        """Whether ``node`` reads the input's shape (``x.size(0)``)."""
        return False

    def reads_merged_rows(self, node: Any, runs: dict[int, dict[Any, Any]]) -> bool:
        """Whether ``node`` is read as a value whose batch is merged with other rows (``runs``: every node's
        values at B = 2 and 3)."""
        return False

    # -- helpers --------------------------------------------------------------------------------------
    def refuse(self, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{_describe(self.node)} at {_where(self.node)}: {why}")

    def add(self, kind: str, inputs: tuple[int, ...], out_shape: tuple[int, ...] | None = None, **params: Any) -> int:
        """A graph node for the fx node being read: its output shape is the traced one unless given (the
        inner nodes of a module read as several operations)."""
        shape = self.shapes[self.node] if out_shape is None else tuple(out_shape)
        self.nodes.append(GraphNode(kind, inputs, params, shape, self.node.name, _where(self.node)))
        return len(self.nodes) - 1

    def shape(self, graph_node: int) -> tuple[int, ...]:
        return self.nodes[graph_node].shape

    def value(self, arg: Any) -> int:
        """The graph node of an operand: an input-dependent value, or a constant made a node here (leading
        dimensions of size 1 beyond the result's rank dropped: they broadcast over the batch)."""
        if arg in self.ids:
            return self.ids[arg]
        const = self.consts.get(arg, arg) if isinstance(arg, self.torch.fx.Node) else arg
        if isinstance(const, (int, float)) and not isinstance(const, bool):
            const = self.torch.tensor(float(const))
        if not isinstance(const, self.torch.Tensor) or not const.is_floating_point():
            raise self.refuse(f"an operand is {type(const).__name__}, not a float tensor or number")
        rank = len(self.shapes[self.node])
        while const.dim() > rank and const.shape[0] == 1:
            const = const[0]
        if const.dim() > rank:
            raise self.refuse(f"a constant of shape {tuple(const.shape)} would differ from sample to sample")
        self.nodes.append(GraphNode("constant", (), {"value": _f32(const, "a constant")}, tuple(const.shape),
                                    getattr(arg, "name", "constant"), _where(self.node)))
        return len(self.nodes) - 1

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        args, kwargs = self.node.args, self.node.kwargs
        return args[i] if len(args) > i else kwargs.get(name, default)

    def sample_dim(self, dim: int) -> int:
        """A dimension of the full tensor (batch first) as a dimension of one sample."""
        rank = len(self.shapes[self.node.args[0]]) + 1
        d = int(dim) % rank
        if d == 0:
            raise self.refuse("it works along the batch dimension, which would mix samples")
        return d - 1

    # -- the operations -------------------------------------------------------------------------------
    def linear(self, m: Any, x: int) -> int:
        bias = _f32(m.bias, f"{self.node.name}.bias") if m.bias is not None else None
        return self.add("linear", (x,), weight=_f32(m.weight, f"{self.node.name}.weight"), bias=bias)

    def conv2d(self, m: Any, x: int) -> int:
        if m.padding_mode != "zeros":
            raise self.refuse(f"padding_mode={m.padding_mode!r} is not supported, only 'zeros'")
        padding = m.padding
        if isinstance(padding, str):
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size, strict=False)]
            if padding == "same" and any(t % 2 for t in total):
                raise self.refuse("padding='same' with an even dilated kernel pads unevenly, which is not supported")
            padding = [0, 0] if padding == "valid" else [t // 2 for t in total]
        bias = _f32(m.bias, f"{self.node.name}.bias") if m.bias is not None else None
        return self.add("conv2d", (x,), weight=_f32(m.weight, f"{self.node.name}.weight"), bias=bias,
                        stride=_pair(m.stride), padding=_pair(padding), dilation=_pair(m.dilation), groups=m.groups)

    def conv1d(self, m: Any, x: int) -> int:
        """A 1-D convolution over (channels, length) samples, as a 2-D one of kernel height 1."""
        if m.padding_mode != "zeros":
            raise self.refuse(f"padding_mode={m.padding_mode!r} is not supported, only 'zeros'")
        padding = m.padding
        if isinstance(padding, str):
            total = m.dilation[0] * (m.kernel_size[0] - 1)
            if padding == "same" and total % 2:
                raise self.refuse("padding='same' with an even dilated kernel pads unevenly, which is not supported")
            padding = 0 if padding == "valid" else total // 2
        bias = _f32(m.bias, f"{self.node.name}.bias") if m.bias is not None else None
        return as_one_row(self.add, "conv2d", x, self.shape(x), self.shapes[self.node],
                          weight=_f32(m.weight, f"{self.node.name}.weight")[:, :, None, :].copy(), bias=bias,
                          stride=height_one(m.stride, 1), padding=height_one(padding, 0),
                          dilation=height_one(m.dilation, 1), groups=m.groups)

    def conv_transpose(self, m: Any, x: int) -> int:
        """ConvTranspose2d, and ConvTranspose1d over (channels, length) samples as height 1 (:mod:`..resampling`)."""
        if m.padding_mode != "zeros":
            raise self.refuse(f"padding_mode={m.padding_mode!r} is not supported, only 'zeros'")
        one_d = isinstance(m, self.torch.nn.ConvTranspose1d)
        weight = _f32(m.weight, f"{self.node.name}.weight")
        settings = [(list(v) if not one_d else height_one(v, first))
                    for v, first in ((m.stride, 1), (m.padding, 0), (m.output_padding, 0), (m.dilation, 1))]
        try:
            stride, padding, output_padding, dilation = settings
            params = transposed_conv_params(weight[:, :, None, :] if one_d else weight, stride, padding, output_padding,
                                            dilation, m.groups)
        except ValueError as e:
            raise self.refuse(str(e)) from e
        bias = _f32(m.bias, f"{self.node.name}.bias") if m.bias is not None else None
        if one_d:
            return as_one_row(self.add, "conv2d", x, self.shape(x), self.shapes[self.node], bias=bias, **params)
        return self.add("conv2d", (x,), bias=bias, **params)

    def upsample(self, x: int, mode: str, scale_factor: Any = None, what: str = "Upsample") -> int:
        """Nearest upsampling by whole factors (from the shapes; a given scale factor must be that whole number)."""
        if mode != "nearest":
            raise self.refuse(f"{what}(mode={mode!r}) is not supported, only mode 'nearest'")
        shape, out = self.shape(x), tuple(self.shapes[self.node])
        factors = [o // i for o, i in zip(out[1:], shape[1:], strict=True)]
        given = scale_factor if isinstance(scale_factor, (list, tuple)) else [scale_factor] * len(factors)
        if any(o != i * f for o, i, f in zip(out[1:], shape[1:], factors, strict=True)) or \
                scale_factor is not None and [float(s) for s in given] != [float(f) for f in factors]:
            raise self.refuse(f"nearest upsampling from {shape} to {out} is not by whole factors, which is not supported")
        return nearest_upsample(self.add, x, shape, factors)

    def pool1d(self, m: Any, x: int) -> int:
        """MaxPool1d and AvgPool1d over (channels, length) samples, as 2-D pools of height 1."""
        if getattr(m, "return_indices", False):
            raise self.refuse("max pooling with return_indices is not supported")
        kernel, stride = height_one(m.kernel_size, 1), height_one(m.stride or m.kernel_size, 1)
        if isinstance(m, self.torch.nn.MaxPool1d):
            return as_one_row(self.add, "max_pool2d", x, self.shape(x), self.shapes[self.node], kernel=kernel,
                              stride=stride, padding=height_one(m.padding, 0), dilation=height_one(m.dilation, 1),
                              ceil_mode=bool(m.ceil_mode))
        return as_one_row(self.add, "avg_pool2d", x, self.shape(x), self.shapes[self.node], kernel=kernel, stride=stride,
                          padding=height_one(m.padding, 0), ceil_mode=bool(m.ceil_mode),
                          count_include_pad=bool(m.count_include_pad), divisor_override=0)

    def batch_norm(self, m: Any, x: int) -> int:
        if m.running_mean is None or m.running_var is None:
            raise self.refuse("batch norm without running statistics cannot run in eval mode")
        mean, var = m.running_mean.detach().double(), m.running_var.detach().double()
        g = m.weight.detach().double() if m.weight is not None else self.torch.ones_like(mean)
        b = m.bias.detach().double() if m.bias is not None else self.torch.zeros_like(mean)
        scale = g / self.torch.sqrt(var + m.eps)  # folded in float64, then rounded once to float32
        return self.add("channel_affine", (x,), scale=_f32(scale, self.node.name), shift=_f32(b - mean * scale,
                                                                                               self.node.name))

    def layer_norm(self, m: Any, x: int) -> int:
        """Layer norm over the last dimension (the shape of its input)."""
        if len(m.normalized_shape) != 1:
            raise self.refuse(f"layer norm over {tuple(m.normalized_shape)} is not supported, only the last dimension")
        n = m.normalized_shape[0]
        g = m.weight if m.weight is not None else self.torch.ones(n)
        b = m.bias if m.bias is not None else self.torch.zeros(n)
        return self.add("layer_norm", (x,), self.shape(x), weight=_f32(g, self.node.name), bias=_f32(b, self.node.name),
                        eps=float(m.eps))

    def embedding(self, x: int, weight: Any, max_norm: Any = None) -> int:
        if max_norm is not None:
            raise self.refuse("an embedding with max_norm changes its table as it runs; not supported")
        return self.add("embedding", (x,), table=_f32(weight, f"{self.node.name}.weight"))

    def max_pool(self, x: int, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                 return_indices: bool = False) -> int:
        if return_indices:
            raise self.refuse("max pooling with return_indices is not supported")
        return self.add("max_pool2d", (x,), kernel=_pair(kernel), stride=_pair(stride or kernel),
                        padding=_pair(padding), dilation=_pair(dilation), ceil_mode=bool(ceil_mode))

    def avg_pool(self, x: int, kernel: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
                 divisor_override: Any) -> int:
        return self.add("avg_pool2d", (x,), kernel=_pair(kernel), stride=_pair(stride or kernel),
                        padding=_pair(padding), ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                        divisor_override=int(divisor_override or 0))

    def adaptive_avg_pool(self, x: int) -> int:
        return self.add("adaptive_avg_pool2d", (x,), output_size=list(self.shapes[self.node][1:]))

    def activation(self, name: str, x: int, approximate: str = "none", alpha: float | None = None) -> int:
        if approximate not in ("none", "tanh"):
            raise self.refuse(f"GELU(approximate={approximate!r}) is not supported, only 'none' and 'tanh'")
        if alpha is not None:
            return self.add("activation", (x,), name=name, alpha=float(alpha))
        return self.add("activation", (x,), name="gelu_tanh" if approximate == "tanh" else name)

    def elu(self, x: int, alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> int:
        if (float(scale), float(input_scale)) != (1.0, 1.0):
            raise self.refuse("ELU with scale or input_scale (SELU, CELU) is not supported")
        return self.activation("elu", x, alpha=alpha)

    def softmax(self, x: int, dim: Any, kind: str = "softmax") -> int:
        if dim is None:
            raise self.refuse(f"{kind} without dim is not supported (pass dim=)")
        return self.add(kind, (x,), dim=self.sample_dim(dim))

    def reduce(self, x: int, dim: Any, keepdim: bool = False, mean: bool = True, dtype: Any = None) -> int:
        what = "mean" if mean else "sum"
        if dtype is not None:
            raise self.refuse(f"{what} with dtype= is not supported")
        if not isinstance(dim, int):
            raise self.refuse(f"{what} over {dim!r} is not supported: one dimension of the sample, as an int")
        rank = len(self.shapes[self.node.args[0]])
        reduced = self.add("reduce", (x,), tuple(d for i, d in enumerate(self.shapes[self.node.args[0]])
                                                 if i != self.sample_dim(dim)) or (1,),
                           dim=self.sample_dim(dim), mean=mean)
        if keepdim or rank == 1:  # the traced shape keeps a 1 where the dimension was (or is a scalar)
            return self.add("reshape", (reduced,), shape=list(self.shapes[self.node]))
        return reduced

    def index(self, x: int, index: Any) -> int:
        """x[:, i, ...]: the batch kept whole, integers only where the dimension has size 1 (a reshape)."""
        parts = index if isinstance(index, tuple) else (index,)
        shape = self.shapes[self.node.args[0]]
        whole = slice(None)
        if not parts or parts[0] != whole:
            raise self.refuse("indexing must keep the batch dimension whole (x[:, ...])")
        for d, part in enumerate(parts[1:]):
            if part == whole or part is Ellipsis and d == len(parts) - 2:
                continue
            if not (isinstance(part, int) and d < len(shape) and shape[d] == 1 and part in (0, -1)):
                raise self.refuse(f"indexing with {part!r} is not supported yet (only x[:, 0] of a dimension of 1)")
        if not self.shapes[self.node]:
            raise self.refuse("indexing down to one number per sample is not supported")
        return self.reshape(x)

    def reshape(self, x: int) -> int:
        return self.add("reshape", (x,), shape=list(self.shapes[self.node]))

    def permute(self, x: int, dims: list[int]) -> int:
        rank = len(dims)
        if int(dims[0]) % rank != 0:
            raise self.refuse("it moves the batch dimension, which would mix samples")
        return self.add("permute", (x,), perm=[int(d) % rank - 1 for d in dims[1:]])

    def transpose(self, x: int, d0: int, d1: int) -> int:
        rank = len(self.shapes[self.node]) + 1
        dims = list(range(rank))
        a, b = int(d0) % rank, int(d1) % rank
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(x, dims)

    def binary(self, op: str, a: Any, b: Any, alpha: Any = None) -> int:
        if alpha not in (None, 1):
            raise self.refuse(f"{op} with alpha={alpha} is not supported")
        return self.add("binary", (self.value(a), self.value(b)), op=op)

    def attention(self, q: int, k: int, v: int, scale: Any = None, causal: bool = False, mask: Any = None) -> int:
        """Attention; a mask the same for every sample that lets every position see all (none) or those up to
        its own (causal) is read as such, any other refused."""
        d = self.shape(q)[-1]
        if mask is not None:
            m = self.consts.get(mask) if isinstance(mask, self.torch.fx.Node) else mask
            if not isinstance(m, self.torch.Tensor) or m.dtype != self.torch.bool:
                raise self.refuse("attention with a mask that depends on the data (or is not boolean) is not supported")
            lq, lk = self.shape(q)[-2], self.shape(k)[-2]
            full = m.expand(*m.shape[:-2], lq, lk) if m.dim() >= 2 else m
            lower = self.torch.ones(lq, lk, dtype=self.torch.bool).tril()
            if bool(full.all()):
                pass
            elif lq == lk and not causal and bool((full == lower).all()):
                causal = True
            else:
                raise self.refuse("attention with a mask other than none or causal is not supported")
        return self.add("attention", (q, k, v), scale=float(np.float32(1 / np.sqrt(d) if scale is None else scale)),
                        causal=bool(causal))

    # -- dispatch -------------------------------------------------------------------------------------
    def read_module(self, m: Any, x: int) -> int:
        nn = self.torch.nn
        if isinstance(m, nn.Linear):
            return self.linear(m, x)
        if isinstance(m, nn.Conv2d):
            return self.conv2d(m, x)
        if isinstance(m, nn.Conv1d) and len(self.shape(x)) == 2:
            return self.conv1d(m, x)
        if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) and len(self.shape(x)) == 2:
            return self.pool1d(m, x)
        if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
            return self.conv_transpose(m, x)
        if isinstance(m, nn.Upsample):
            return self.upsample(x, m.mode, m.scale_factor)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batch_norm(m, x)
        if isinstance(m, nn.LayerNorm):
            return self.layer_norm(m, x)
        if isinstance(m, nn.MaxPool2d):
            return self.max_pool(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices)
        if isinstance(m, nn.AvgPool2d):
            return self.avg_pool(x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                 m.divisor_override)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self.adaptive_avg_pool(x)
        if isinstance(m, nn.Flatten):
            return self.reshape(x)
        names = {nn.ReLU: "relu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU6: "relu6",
                 nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish", nn.Mish: "mish"}
        if type(m) in names:
            return self.activation(names[type(m)], x)
        if isinstance(m, nn.LeakyReLU):
            return self.activation("leaky_relu", x, alpha=m.negative_slope)
        if type(m) is nn.ELU:
            return self.elu(x, m.alpha)
        if isinstance(m, nn.GELU):
            return self.activation("gelu", x, m.approximate)
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            return self.softmax(x, m.dim, "softmax" if isinstance(m, nn.Softmax) else "log_softmax")
        if isinstance(m, nn.Embedding):
            return self.embedding(x, m.weight, m.max_norm)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return x
        raise self.refuse(f"{type(m).__name__} is not supported; supported: {SUPPORTED}")

    def no_masks(self, first: int) -> None:
        """Refuses masks and causal flags passed to a module or function from argument ``first`` on."""
        names = ("mask", "src_mask", "attn_mask", "key_padding_mask", "src_key_padding_mask", "is_causal")
        given = [k for k, v in self.node.kwargs.items() if k in names and v not in (None, False)]
        given += [f"argument {i}" for i, v in enumerate(self.node.args[first:], first) if v not in (None, False)
                  and not isinstance(v, bool)]
        if given:
            raise self.refuse(f"masks are not supported yet ({', '.join(map(str, given))})")

    def read_call(self, name: str, x: int) -> int:
        """call_function and call_method nodes, by the function's or method's name."""
        a = self.arg
        calls: dict[str, Callable[[], int]] = {
            "relu": lambda: self.activation("relu", x), "silu": lambda: self.activation("silu", x),
            "tanh": lambda: self.activation("tanh", x), "sigmoid": lambda: self.activation("sigmoid", x),
            "relu6": lambda: self.activation("relu6", x),
            "hardsigmoid": lambda: self.activation("hardsigmoid", x),
            "hardswish": lambda: self.activation("hardswish", x), "mish": lambda: self.activation("mish", x),
            "leaky_relu": lambda: self.activation("leaky_relu", x, alpha=a(1, "negative_slope", 0.01)),
            "elu": lambda: self.elu(x, a(1, "alpha", 1.0)),
            "gelu": lambda: self.activation("gelu", x, a(1, "approximate", "none")),
            "softmax": lambda: self.softmax(x, a(1, "dim")),
            "log_softmax": lambda: self.softmax(x, a(1, "dim"), "log_softmax"),
            "max_pool2d": lambda: self.max_pool(x, a(1, "kernel_size"), a(2, "stride"), a(3, "padding", 0),
                                                a(4, "dilation", 1), a(5, "ceil_mode", False),
                                                a(6, "return_indices", False)),
            "avg_pool2d": lambda: self.avg_pool(x, a(1, "kernel_size"), a(2, "stride"), a(3, "padding", 0),
                                                a(4, "ceil_mode", False), a(5, "count_include_pad", True),
                                                a(6, "divisor_override")),
            "adaptive_avg_pool2d": lambda: self.adaptive_avg_pool(x),
            "interpolate": lambda: self.upsample(x, a(3, "mode", "nearest"), a(2, "scale_factor"), "interpolate"),
            "dropout": lambda: x, "contiguous": lambda: x,
            "mean": lambda: self.reduce(x, a(1, "dim"), a(2, "keepdim", False), True, a(3, "dtype")),
            "sum": lambda: self.reduce(x, a(1, "dim"), a(2, "keepdim", False), False, a(3, "dtype")),
            "getitem": lambda: self.index(x, a(1, "index")),
            "embedding": lambda: self.embedding(x, self.consts[a(1, "weight")], a(3, "max_norm")),
            "permute": lambda: self.permute(x, list(self.node.args[1:]) if len(self.node.args) > 2
                                            or isinstance(a(1, "dims"), int) else list(a(1, "dims"))),
            "transpose": lambda: self.transpose(x, a(1, "dim0"), a(2, "dim1")),
        }
        for reshaping in ("reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze"):
            calls[reshaping] = lambda: self.reshape(x)
        if name not in calls:
            raise self.refuse(f"{name} is not supported; supported: {SUPPORTED}")
        return calls[name]()


