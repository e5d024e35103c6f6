"""Graph models: what ``bc.from_torch`` makes of a module that is not a plain chain of layers (a CNN, a
residual block, a custom ``forward``), read through ``torch.fx`` (:mod:`batchcore.frontends.torch.fx_trace`).

A :class:`GraphModel` is plain data, like :class:`~batchcore.model.chain.Model`: its nodes in execution order
(each an operation of the core's ``Graph`` with its parameters as float32 numpy arrays, its inputs as
indices of earlier nodes, and the shape of one sample of its output), the torch module it was read from,
and a name. The native backend builds the core's graph from it once and caches it; the torch backend runs
the source module itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError, UnsupportedLayerError
from .chain import Model, check_source

# Operation -> how the core's graph adds it: (method, parameter names passed in order after the inputs).
GRAPH_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "constant": ("add_constant", ("value",)),
    "linear": ("add_linear", ("weight", "bias")),
    "conv2d": ("add_conv2d", ("weight", "bias", "stride", "padding", "dilation", "groups", "input_dilation",
                              "extra_padding")),
    "max_pool2d": ("add_max_pool2d", ("kernel", "stride", "padding", "dilation", "ceil_mode")),
    "avg_pool2d": ("add_avg_pool2d", ("kernel", "stride", "padding", "ceil_mode", "count_include_pad",
                                      "divisor_override")),
    "adaptive_avg_pool2d": ("add_adaptive_avg_pool2d", ("output_size",)),
    "channel_affine": ("add_channel_affine", ("scale", "shift")),
    "activation": ("add_activation", ("name", "alpha")),
    "softmax": ("add_softmax", ("dim",)),
    "log_softmax": ("add_log_softmax", ("dim",)),
    "reduce": ("add_reduce", ("dim", "mean")),
    "layer_norm": ("add_layer_norm", ("weight", "bias", "eps")),
    "binary": ("add_binary", ("op",)),
    "reshape": ("add_reshape", ("shape",)),
    "permute": ("add_permute", ("perm",)),
    "attention": ("add_attention", ("scale", "causal")),
    "embedding": ("add_embedding", ("table",)),
    "concat": ("add_concat", ("dim",)),
    "slice": ("add_slice", ("dim", "start", "stop", "step")),
    "matmul": ("add_matmul", ()),
}
# Parameters a node may leave out (the core's default, None, is passed): an activation's alpha, a transposed
# convolution's input dilation and extra padding.
OPTIONAL_PARAMS = frozenset({"alpha", "input_dilation", "extra_padding"})
# Operations of any number of inputs: the core takes them as one list.
VARIADIC_OPS = frozenset({"concat"})

# Token ids reach the core as float32, which holds every integer below 2**24 exactly.
MAX_TOKEN_ID = 2**24


def check_token_ids(x: Any, sample_shape: tuple[int, ...]) -> np.ndarray:
    """A batch of token ids: a C-contiguous int64 numpy array of shape (B, *sample_shape), B >= 1, every
    id in [0, 2**24) (DTypeError, ShapeError); the core checks each against its table."""
    if not isinstance(x, np.ndarray) or x.dtype != np.int64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise DTypeError(f"token ids must be an int64 numpy array, got {got} (nothing is converted silently)")
    if x.shape[1:] != tuple(sample_shape) or x.ndim != len(sample_shape) + 1 or len(x) == 0:
        raise ShapeError(f"token ids must have shape (batch, {', '.join(map(str, sample_shape))}), got {x.shape}")
    if not x.flags.c_contiguous:
        raise DTypeError("token ids must be C-contiguous (pass np.ascontiguousarray(...))")
    if x.min() < 0 or x.max() >= MAX_TOKEN_ID:
        raise ShapeError(f"token ids must lie in [0, 2**24), got {x.min()}..{x.max()}")
    return x


@dataclass
class GraphNode:
    """One operation. ``op``: a key of :data:`GRAPH_OPS`; ``inputs``: indices of earlier nodes (node 0 is
    the input); ``params``: its parameters; ``shape``: one sample's output shape; ``name`` and ``source``:
    the torch.fx node it was read from and where in the user's code that is."""

    op: str
    inputs: tuple[int, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    name: str = ""
    source: str = ""


class GraphModel:
    """A model as a graph of operations over batches of N-D samples (see the module's docstring).

    ``nodes`` (a tuple of :class:`GraphNode`, node 0 the input), ``output`` (the node whose value the
    model returns), ``input_shape`` and ``output_shape`` (one sample's), ``input_dtype`` ("float32", or
    "int64" for token ids), ``name``, ``source_module`` and ``source_framework`` (as a
    :class:`~batchcore.model.chain.Model`'s).
    """

    def __init__(self, nodes: list[GraphNode], output: int, source_module: Any = None, name: str = "graph",
                 input_dtype: str = "float32", source_framework: str | None = None):
        nodes = list(nodes)
        if not nodes or nodes[0].op != "input":
            raise ShapeError("a graph model's first node must be its input")
        for i, n in enumerate(nodes[1:], start=1):
            if n.op not in GRAPH_OPS:
                raise UnsupportedLayerError(f"graph node {i} ({n.name}): unknown operation {n.op!r}")
            if any(not 0 <= j < i for j in n.inputs):
                raise ShapeError(f"graph node {i} ({n.name}) reads a node that does not come before it")
        if not 0 < output < len(nodes) and not (output == 0 and len(nodes) == 1):
            raise ShapeError(f"output node {output} does not exist")
        if input_dtype not in ("float32", "int64"):
            raise ShapeError(f"a graph model's input is float32 numbers or int64 token ids, not {input_dtype!r}")
        self.input_dtype = input_dtype
        self.nodes: tuple[GraphNode, ...] = tuple(nodes)
        self.output = int(output)
        self.source_module = source_module
        self.source_framework = check_source(source_module, source_framework)
        self.name = name
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in nodes[0].shape)
        self.output_shape: tuple[int, ...] = tuple(int(d) for d in nodes[output].shape)

    # -- facts ----------------------------------------------------------------------------------------
    @property
    def input_width(self) -> int:
        """Floats per input sample."""
        return int(np.prod(self.input_shape))

    @property
    def output_width(self) -> int:
        """Floats per output sample."""
        return int(np.prod(self.output_shape))

    @property
    def widest(self) -> int:
        """The most floats any one node makes per sample."""
        return max(int(np.prod(n.shape)) for n in self.nodes)

    @property
    def flops_per_row(self) -> int:
        """2 x the multiply-adds of one sample's linear layers and convolutions (a row of the batch): each
        output element of either is one dot product over the weight's taps (all dimensions but the first)."""
        flops = sum(2 * int(np.prod(n.shape)) * int(np.prod(n.params["weight"].shape[1:]))
                    for n in self.nodes if n.op in ("linear", "conv2d"))
        for n in self.nodes:  # attention: the scores' dots over d, the values' dots over the keys
            if n.op == "attention":
                q, k = self.nodes[n.inputs[0]].shape, self.nodes[n.inputs[1]].shape
                flops += 2 * int(np.prod(q[:-1])) * k[-2] * (q[-1] + n.shape[-1])
            if n.op == "matmul":  # a dot over k per output element
                flops += 2 * int(np.prod(n.shape)) * self.nodes[n.inputs[0]].shape[-1]
        return flops

    def min_traffic_bytes(self, batch_size: int) -> int:
        """Every parameter read once, the input read and the output written once (float32): a lower
        bound of the bytes a pass moves (intermediate values assumed to stay in cache)."""
        params = sum(v.size for n in self.nodes for v in n.params.values() if isinstance(v, np.ndarray))
        return 4 * (params + batch_size * (self.input_width + self.output_width))

    def describe(self) -> str:
        """The graph in one line: ``(1, 8, 8) -> conv2d (8, 8, 8) -> relu ... -> linear (10,)``."""
        parts = [str(self.input_shape)]
        for n in self.nodes[1:]:
            if n.op == "constant":
                continue
            what = n.params.get("name") or n.params.get("op") or n.op
            if n.params.get("alpha") is not None:
                what += f"({n.params['alpha']:g})"
            extra = "".join(f" %{j}" for j in n.inputs[1:]) if n.op == "binary" else ""
            parts.append(f"{what}{extra} {tuple(n.shape)}")
        return " -> ".join(parts)

    def digest(self) -> str:
        """A hash of the graph and every parameter's bits."""
        h = hashlib.sha256((self.describe() + self.input_dtype).encode())
        for n in self.nodes:
            h.update(repr((n.op, n.inputs, n.shape)).encode())
            for key in sorted(n.params):
                v = n.params[key]
                h.update(key.encode())
                h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<batchcore.GraphModel {self.name}: {len(self.nodes) - 1} operations, {self.input_shape} -> " \
               f"{self.output_shape}>"


AnyModel = Model | GraphModel  # what every backend's run, run_batched, measure and plan take
