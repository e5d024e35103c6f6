"""Reading a torch module into a :class:`~batchcore.graph_models.GraphModel` through ``torch.fx``.

The module is traced symbolically (its ``forward`` as written: residual connections, custom code), then
run twice on zero batches of 2 and 3 samples to learn every value's shape. A value whose first dimension
is not the batch size in both runs would mix samples: it is refused. Values that do not depend on the
input (parameters used directly, arithmetic on them) are computed once with torch and become constants.
Each remaining node maps to one operation of the core's graph, or raises UnsupportedLayerError naming
the node, its operation and the line of the user's code it comes from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import NonFiniteError, UnsupportedLayerError
from .graph_models import GraphModel, GraphNode

SUPPORTED = ("Linear, Conv2d, BatchNorm1d/2d (eval), LayerNorm (last dimension), MaxPool2d, AvgPool2d, "
             "AdaptiveAvgPool2d, Flatten, ReLU, GELU (erf), SiLU, Tanh, Softmax (any sample dimension), Dropout, "
             "Identity, + - * / (broadcasting), reshape/view/flatten, permute/transpose, contiguous")


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
    frames = [(f.strip(), code.strip()) for f, code in zip(lines, lines[1:] + [""])
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


class _Reader:
    """One pass over a traced graph; see the module's docstring."""

    def __init__(self, torch: Any, gm: Any, shapes: dict[Any, tuple[int, ...]]):
        self.torch, self.gm, self.shapes = torch, gm, shapes
        self.nodes: list[GraphNode] = []
        self.ids: dict[Any, int] = {}      # fx node -> graph node index (values that depend on the input)
        self.consts: dict[Any, Any] = {}   # fx node -> its value (tensors and numbers that do not)
        self.node: Any = None              # the fx node being read

    # -- helpers --------------------------------------------------------------------------------------
    def refuse(self, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{_describe(self.node)} at {_where(self.node)}: {why}")

    def add(self, kind: str, inputs: tuple[int, ...], **params: Any) -> int:
        self.nodes.append(GraphNode(kind, inputs, params, self.shapes[self.node], self.node.name, _where(self.node)))
        return len(self.nodes) - 1

    def value(self, arg: Any) -> int:
        """The graph node of an operand: an input-dependent value, or a constant made a node here."""
        if arg in self.ids:
            return self.ids[arg]
        const = self.consts.get(arg, arg) if isinstance(arg, self.torch.fx.Node) else arg
        if isinstance(const, (int, float)) and not isinstance(const, bool):
            const = self.torch.tensor(float(const))
        if not isinstance(const, self.torch.Tensor) or not const.is_floating_point():
            raise self.refuse(f"an operand is {type(const).__name__}, not a float tensor or number")
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
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            if padding == "same" and any(t % 2 for t in total):
                raise self.refuse("padding='same' with an even dilated kernel pads unevenly, which is not supported")
            padding = [0, 0] if padding == "valid" else [t // 2 for t in total]
        bias = _f32(m.bias, f"{self.node.name}.bias") if m.bias is not None else None
        return self.add("conv2d", (x,), weight=_f32(m.weight, f"{self.node.name}.weight"), bias=bias,
                        stride=_pair(m.stride), padding=_pair(padding), dilation=_pair(m.dilation), groups=m.groups)

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
        if len(m.normalized_shape) != 1:
            raise self.refuse(f"layer norm over {tuple(m.normalized_shape)} is not supported, only the last dimension")
        n = m.normalized_shape[0]
        g = m.weight if m.weight is not None else self.torch.ones(n)
        b = m.bias if m.bias is not None else self.torch.zeros(n)
        return self.add("layer_norm", (x,), weight=_f32(g, self.node.name), bias=_f32(b, self.node.name),
                        eps=float(m.eps))

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

    def activation(self, name: str, x: int, approximate: str = "none") -> int:
        if approximate != "none":
            raise self.refuse(f"GELU(approximate={approximate!r}) is not supported yet, only 'none'")
        return self.add("activation", (x,), name=name)

    def softmax(self, x: int, dim: Any) -> int:
        if dim is None:
            raise self.refuse("softmax without dim is not supported (pass dim=)")
        return self.add("softmax", (x,), dim=self.sample_dim(dim))

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

    # -- dispatch -------------------------------------------------------------------------------------
    def read_module(self, m: Any, x: int) -> int:
        nn = self.torch.nn
        if isinstance(m, nn.Linear):
            return self.linear(m, x)
        if isinstance(m, nn.Conv2d):
            return self.conv2d(m, x)
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
        if isinstance(m, (nn.ReLU, nn.SiLU, nn.Tanh)):
            return self.activation({nn.ReLU: "relu", nn.SiLU: "silu", nn.Tanh: "tanh"}[type(m)], x)
        if isinstance(m, nn.GELU):
            return self.activation("gelu", x, m.approximate)
        if isinstance(m, nn.Softmax):
            return self.softmax(x, m.dim)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return x
        raise self.refuse(f"{type(m).__name__} is not supported; supported: {SUPPORTED}")

    def read_call(self, name: str, x: int) -> int:
        """call_function and call_method nodes, by the function's or method's name."""
        a = self.arg
        calls: dict[str, Callable[[], int]] = {
            "relu": lambda: self.activation("relu", x), "silu": lambda: self.activation("silu", x),
            "tanh": lambda: self.activation("tanh", x),
            "gelu": lambda: self.activation("gelu", x, a(1, "approximate", "none")),
            "softmax": lambda: self.softmax(x, a(1, "dim")),
            "max_pool2d": lambda: self.max_pool(x, a(1, "kernel_size"), a(2, "stride"), a(3, "padding", 0),
                                                a(4, "dilation", 1), a(5, "ceil_mode", False),
                                                a(6, "return_indices", False)),
            "avg_pool2d": lambda: self.avg_pool(x, a(1, "kernel_size"), a(2, "stride"), a(3, "padding", 0),
                                                a(4, "ceil_mode", False), a(5, "count_include_pad", True),
                                                a(6, "divisor_override")),
            "adaptive_avg_pool2d": lambda: self.adaptive_avg_pool(x),
            "dropout": lambda: x, "contiguous": lambda: x,
            "permute": lambda: self.permute(x, list(self.node.args[1:]) if len(self.node.args) > 2
                                            or isinstance(a(1, "dims"), int) else list(a(1, "dims"))),
            "transpose": lambda: self.transpose(x, a(1, "dim0"), a(2, "dim1")),
        }
        for reshaping in ("reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze"):
            calls[reshaping] = lambda: self.reshape(x)
        if name not in calls:
            raise self.refuse(f"{name} is not supported; supported: {SUPPORTED}")
        return calls[name]()


# The element-wise arithmetic fx records (operator.add for `a + b`, torch.add, Tensor.add, in place or not).
_BINARY = {"add": "add", "iadd": "add", "sub": "sub", "isub": "sub", "mul": "mul", "imul": "mul", "div": "div",
           "truediv": "div", "itruediv": "div", "true_divide": "div"}


def _fold(torch: Any, gm: Any, node: Any, consts: dict[Any, Any]) -> Any:
    """The value of a node none of whose operands depend on the input, computed with torch."""
    args = torch.fx.node.map_arg(node.args, lambda n: consts[n])
    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: consts[n])
    with torch.no_grad():
        if node.op == "get_attr":
            value: Any = gm
            for part in node.target.split("."):
                value = getattr(value, part)
            return value
        if node.op == "call_module":
            return gm.get_submodule(node.target)(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], node.target)(*args[1:], **kwargs)


def _shapes(torch: Any, gm: Any, input_shape: tuple[int, ...], placeholder: Any) -> dict[Any, tuple[int, ...]]:
    """Each input-dependent tensor value's sample shape, from runs at B = 2 and 3 (see the docstring)."""
    from torch.fx.passes.shape_prop import ShapeProp

    seen: dict[int, dict[Any, Any]] = {}
    for B in (2, 3):
        ShapeProp(gm).propagate(torch.zeros((B, *input_shape)))
        seen[B] = {n: n.meta.get("tensor_meta") for n in gm.graph.nodes}
    shapes: dict[Any, tuple[int, ...]] = {}
    for n in gm.graph.nodes:
        m2, m3 = seen[2][n], seen[3][n]
        if not hasattr(m2, "shape") or not hasattr(m3, "shape"):
            continue
        s2, s3 = tuple(m2.shape), tuple(m3.shape)
        if s2[:1] == (2,) and s3[:1] == (3,) and s2[1:] == s3[1:]:
            shapes[n] = s2[1:]
        elif s2 != s3:  # depends on the batch size, yet not as its first dimension
            raise UnsupportedLayerError(f"{_describe(n)} at {_where(n)}: its shape {s3} at a batch of 3 does not keep "
                                        "the batch as its first dimension, which would mix samples")
    shapes[placeholder] = tuple(input_shape)
    return shapes


def graph_from_torch(module: Any, input_shape: tuple[int, ...], name: str) -> GraphModel:
    """Read ``module`` (float32, any ``forward`` torch.fx can trace, one input tensor whose samples have
    ``input_shape``) into a GraphModel; see the module's docstring."""
    import torch

    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    try:
        traced = tracer.trace(module)
    except Exception as e:
        raise UnsupportedLayerError(f"torch.fx cannot trace {name}: {type(e).__name__}: {e}") from e
    gm = torch.fx.GraphModule(tracer.root, traced)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedLayerError(f"{name}.forward takes {len(placeholders)} inputs; a native graph takes one tensor")
    was_training = module.training
    module.eval()
    try:
        shapes = _shapes(torch, gm, input_shape, placeholders[0])
    except UnsupportedLayerError:
        raise
    except Exception as e:
        cause = e.__cause__ or e  # ShapeProp wraps the module's own error in a page of graph context
        raise UnsupportedLayerError(f"{name} fails on a batch of samples of shape {input_shape}: "
                                    f"{type(cause).__name__}: {cause}") from e
    finally:
        module.train(was_training)
    reader = _Reader(torch, gm, shapes)
    reader.nodes.append(GraphNode("input", (), {}, tuple(input_shape), placeholders[0].name, "the input"))
    output = None
    shape_reads: set[Any] = set()  # x.size(...) and the like: ints a reshape was given (it takes its shape from the run)
    for node in gm.graph.nodes:
        reader.node = node
        operands = node.all_input_nodes
        depends = any(n in reader.ids or n in shape_reads for n in operands)
        if node.op == "placeholder":
            reader.ids[node] = 0
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node) or result not in reader.ids:
                raise reader.refuse("a native graph returns one tensor that depends on the input")
            output = reader.ids[result]
        elif not depends:
            reader.consts[node] = _fold(torch, gm, node, reader.consts)
        elif node not in shapes:
            reads_shape = node.op == "call_method" and node.target == "size" or node.target is getattr
            if not reads_shape and any(n in reader.ids for n in operands):
                raise reader.refuse("its result is not a tensor")
            shape_reads.add(node)  # a shape read, or arithmetic on one
        else:
            reader.ids[node] = _read_node(reader, node)
    if output is None:  # pragma: no cover - every traced graph ends in an output node
        raise UnsupportedLayerError(f"{name} has no output")
    if output == 0:
        raise UnsupportedLayerError(f"{name} returns its input unchanged: there is nothing to run")
    return GraphModel(reader.nodes, output, source_module=module, name=name)


def _read_node(reader: _Reader, node: Any) -> int:
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    if node.op != "call_module" and name in _BINARY:
        return reader.binary(_BINARY[name], reader.arg(0, "input"), reader.arg(1, "other"), node.kwargs.get("alpha"))
    first = node.args[0] if node.args else None
    if first not in reader.ids:
        raise reader.refuse("its first operand does not depend on the input")
    x = reader.ids[first]
    if node.op == "call_module":
        return reader.read_module(reader.gm.get_submodule(target), x)
    return reader.read_call(name, x)
