"""A Keras 3 model read into a :class:`~batchcore.model.graph.GraphModel`: a Sequential or functional model
(nested models included) of the layers below, walked in Keras's own order of its graph.

Keras's tensors keep Keras's layout (channels last: NHWC images, (steps, channels) sequences); the core's
convolutions and pooling work channels first, so each is read between two permutes (exact copies), and a
permute that undoes the one before it is dropped: a stack of convolutions stays channels first between
them. Keras's kernels (HWIO) become the core's (OIHW) by a transpose, an exact copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DTypeError, UnsupportedLayerError
from ...model.graph import GraphModel, GraphNode
from .attention import multi_head_attention
from .module import folded_batch_norm, to_numpy
from .ref import Ref

SUPPORTED = ("Dense, Conv1D, Conv2D (strides, dilation, groups; padding 'valid', or 'same' where it pads evenly), "
             "DepthwiseConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D, BatchNormalization, "
             "LayerNormalization (last axis), Dropout, Flatten, Reshape, Permute, Activation, ReLU, Softmax, Add, Concatenate, "
             "Subtract, Multiply, Embedding, MultiHeadAttention (no masks), LeakyReLU, ELU, nested models; activations "
             "linear, relu, relu6, gelu, silu/swish, tanh, sigmoid, hard_sigmoid, hard_silu/hard_swish, mish, elu, "
             "leaky_relu, softmax, log_softmax; keras.ops add, subtract, multiply, divide")
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "silu": "silu", "swish": "silu", "tanh": "tanh", "sigmoid": "sigmoid",
               "relu6": "relu6", "hard_sigmoid": "hardsigmoid", "hard_silu": "hardswish", "hard_swish": "hardswish",
               "mish": "mish", "elu": "elu", "leaky_relu": "leaky_relu"}
# The parameter an activation named by a string takes in Keras (its function's default).
ALPHAS = {"elu": 1.0, "leaky_relu": 0.2}
TO_CHANNELS_FIRST, TO_CHANNELS_LAST = [2, 0, 1], [1, 2, 0]


def _f32(keras: Any, v: Any, where: str) -> np.ndarray:
    from ...errors import NonFiniteError

    a = np.ascontiguousarray(to_numpy(keras, v), dtype=np.float32)
    if not np.isfinite(a).all():
        raise NonFiniteError(f"{where} contains NaN or Inf")
    return a


class KerasGraphReader:
    """One pass over a Keras model's layers, in its graph's order; ``nodes`` is the graph read so far."""

    def __init__(self, keras: Any, input_shape: tuple[int, ...]):
        self.keras = keras
        self.nodes: list[GraphNode] = [GraphNode("input", (), {}, input_shape, "input", "")]
        self.layer: Any = None  # the layer (or operation) being read
        self.where = ""

    # -- helpers --------------------------------------------------------------------------------------
    def refuse(self, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.where}: {why}; from_keras reads {SUPPORTED}")

    def add(self, kind: str, inputs: tuple[Ref, ...], out_shape: tuple[int, ...], /, **params: Any) -> Ref:
        """A node of operation ``kind`` (its parameters may be named ``op`` or ``shape``: positional-only here)."""
        name = getattr(self.layer, "name", "") or type(self.layer).__name__
        self.nodes.append(GraphNode(kind, tuple(r.index for r in inputs), params, tuple(out_shape), name, self.where))
        return Ref(len(self.nodes) - 1, tuple(out_shape))

    def permute(self, x: Ref, perm: list[int]) -> Ref:
        """``x`` permuted; a permute that undoes the one that made ``x`` gives that one's input back."""
        made = self.nodes[x.index]
        if made.op == "permute" and [made.params["perm"][p] for p in perm] == list(range(len(perm))):
            source = made.inputs[0]
            return Ref(source, self.nodes[source].shape)
        return self.add("permute", (x,), tuple(x.shape[p] for p in perm), perm=list(perm))

    def channels_first(self, x: Ref, read: Any) -> Ref:
        """``read(x_chw)`` on ``x`` (an image, channels last) moved channels first, and its result moved back."""
        if len(x.shape) != 3:
            raise self.refuse(f"it takes images (height, width, channels), got samples of shape {x.shape}")
        return self.permute(read(self.permute(x, TO_CHANNELS_FIRST)), TO_CHANNELS_LAST)

    def activation(self, x: Ref, fn: Any) -> Ref:
        name = self.keras.activations.serialize(fn)
        name = name if isinstance(name, str) else str(name)
        if name == "linear":
            return x
        if name in ACTIVATIONS:
            return self.add("activation", (x,), x.shape, name=ACTIVATIONS[name], alpha=ALPHAS.get(name))
        if name in ("softmax", "log_softmax"):
            return self.add(name, (x,), x.shape, dim=len(x.shape) - 1)
        raise self.refuse(f"activation {name!r} is not read")

    def elementwise(self, fn: Any) -> bool:
        """Whether an activation acts on each element alone (the same in any layout)."""
        name = self.keras.activations.serialize(fn)
        return name == "linear" or name in ACTIVATIONS

    def weight(self, v: Any, what: str) -> np.ndarray:
        return _f32(self.keras, v, f"{self.where} {what}")

    # -- layers ---------------------------------------------------------------------------------------
    def dense(self, layer: Any, x: Ref) -> Ref:
        if getattr(layer, "lora_enabled", False):
            raise self.refuse("a Dense layer with LoRA is not read")
        w = self.weight(layer.kernel, "kernel").T.copy()
        b = self.weight(layer.bias, "bias") if layer.use_bias else None
        return self.activation(self.add("linear", (x,), (*x.shape[:-1], w.shape[0]), weight=w, bias=b), layer.activation)

    def _padding(self, layer: Any, size: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...]) -> list[int]:
        """Keras's padding as the core's symmetric padding (refused where "same" pads unevenly)."""
        if layer.padding == "valid":
            return [0] * len(size)
        if layer.padding != "same":
            raise self.refuse(f"padding={layer.padding!r} is not read")
        pads = []
        for n, k, s, d in zip(size, kernel, layer.strides, dilation, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            if total % 2:
                raise self.refuse(f"padding='same' pads {total} rows or columns here: unevenly, which the core does not")
            pads.append(total // 2)
        return pads

    def conv2d(self, layer: Any, x: Ref, depthwise: bool = False) -> Ref:
        h, w_, c = x.shape
        kernel = self.weight(layer.kernel, "kernel")  # (kh, kw, cin/groups, cout), or (kh, kw, cin, multiplier)
        if depthwise:
            kh, kw, cin, mult = kernel.shape
            oihw = kernel.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None].copy()
            groups = cin
        else:
            oihw, groups = kernel.transpose(3, 2, 0, 1).copy(), int(layer.groups)
        bias = self.weight(layer.bias, "bias") if layer.use_bias else None
        dilation = list(layer.dilation_rate)
        pad = self._padding(layer, (h, w_), oihw.shape[2:], tuple(dilation))
        out = tuple(int(d) for d in layer.compute_output_shape((None, *x.shape))[1:])

        def conv(chw: Ref) -> Ref:
            return self.add("conv2d", (chw,), (out[2], out[0], out[1]), weight=oihw, bias=bias, stride=list(layer.strides),
                            padding=pad, dilation=dilation, groups=groups)

        if self.elementwise(layer.activation):  # applied channels first: the permutes around the next layer cancel
            return self.channels_first(x, lambda chw: self.activation(conv(chw), layer.activation))
        return self.activation(self.channels_first(x, conv), layer.activation)

    def conv1d(self, layer: Any, x: Ref) -> Ref:
        steps, c = x.shape
        kernel = self.weight(layer.kernel, "kernel")  # (k, cin/groups, cout)
        oihw = kernel.transpose(2, 1, 0)[:, :, None, :].copy()
        bias = self.weight(layer.bias, "bias") if layer.use_bias else None
        pad = self._padding(layer, (steps,), (kernel.shape[0],), tuple(layer.dilation_rate))
        out_steps, cout = (int(d) for d in layer.compute_output_shape((None, *x.shape))[1:])
        rows = self.add("reshape", (self.permute(x, [1, 0]),), (c, 1, steps), shape=[c, 1, steps])
        conv = self.add("conv2d", (rows,), (cout, 1, out_steps), weight=oihw, bias=bias, stride=[1, layer.strides[0]],
                        padding=[0, pad[0]], dilation=[1, layer.dilation_rate[0]], groups=int(layer.groups))
        flat = self.add("reshape", (conv,), (cout, out_steps), shape=[cout, out_steps])
        return self.activation(self.permute(flat, [1, 0]), layer.activation)

    def pool2d(self, layer: Any, x: Ref, kind: str) -> Ref:
        kernel, stride = list(layer.pool_size), list(layer.strides)
        pad = self._padding(layer, x.shape[:2], tuple(kernel), (1, 1))
        out = tuple(int(d) for d in layer.compute_output_shape((None, *x.shape))[1:])
        extra = ({"dilation": [1, 1], "ceil_mode": False} if kind == "max_pool2d" else
                 {"ceil_mode": False, "count_include_pad": False, "divisor_override": 0})
        return self.channels_first(x, lambda chw: self.add(kind, (chw,), (out[2], out[0], out[1]), kernel=kernel,
                                                           stride=stride, padding=pad, **extra))

    def global_average(self, layer: Any, x: Ref) -> Ref:
        if len(x.shape) == 2:  # (steps, channels): the mean over the steps
            if getattr(layer, "supports_masking", False) and getattr(x, "mask", None) is not None:
                raise self.refuse("a masked input is not read")
            mean = self.add("reduce", (x,), (x.shape[1],), dim=0, mean=True)
        else:
            chw = self.permute(x, TO_CHANNELS_FIRST)
            pooled = self.add("adaptive_avg_pool2d", (chw,), (x.shape[2], 1, 1), output_size=[1, 1])
            mean = self.add("reshape", (pooled,), (x.shape[2],), shape=[x.shape[2]])
        if layer.keepdims:
            return self.add("reshape", (mean,), (1,) * (len(x.shape) - 1) + (x.shape[-1],),
                            shape=[1] * (len(x.shape) - 1) + [x.shape[-1]])
        return mean

    def batch_norm(self, layer: Any, x: Ref) -> Ref:
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        if axis not in (-1, len(x.shape)):
            raise self.refuse(f"BatchNormalization over axis {layer.axis} is not read, only the last")
        scale, shift = folded_batch_norm(self.keras, layer)
        params = {"scale": self.weight(scale, "scale"), "shift": self.weight(shift, "shift")}
        if len(x.shape) == 1:
            return self.add("channel_affine", (x,), x.shape, **params)
        last_first = [len(x.shape) - 1, *range(len(x.shape) - 1)]
        moved = self.permute(x, last_first)
        back = [last_first.index(i) for i in range(len(x.shape))]
        return self.permute(self.add("channel_affine", (moved,), moved.shape, **params), back)

    def layer_norm(self, layer: Any, x: Ref) -> Ref:
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if [a % (len(x.shape) + 1) for a in axes] != [len(x.shape)] or getattr(layer, "rms_scaling", False):
            raise self.refuse(f"LayerNormalization over axis {layer.axis} is not read, only the last (no rms_scaling)")
        n = x.shape[-1]
        g = self.weight(layer.gamma, "gamma") if layer.scale else np.ones(n, np.float32)
        b = self.weight(layer.beta, "beta") if layer.center else np.zeros(n, np.float32)
        return self.add("layer_norm", (x,), x.shape, weight=g, bias=b, eps=float(layer.epsilon))

    def merge(self, xs: list[Ref], op: str) -> Ref:
        out = xs[0]
        for other in xs[1:]:  # left to right, as Keras's merge layers add
            out = self.add("binary", (out, other), tuple(np.broadcast_shapes(out.shape, other.shape)), op=op)
        return out

    def constant_or_ref(self, v: Any, like: Ref) -> Ref:
        if isinstance(v, Ref):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return self.add("constant", (), (), value=np.array(v, np.float32))
        raise self.refuse(f"an operand is a {type(v).__name__}, not a value of the graph or a number")

    def reshape(self, x: Ref, shape: tuple[int, ...]) -> Ref:
        return self.add("reshape", (x,), shape, shape=list(shape))

    # -- dispatch -------------------------------------------------------------------------------------
    def read(self, op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The graph value(s) of one layer or operation called on ``args`` (values of the graph, numbers)."""
        keras = self.keras
        self.layer = op
        self.where = f"layer {getattr(op, 'name', '')!r} ({type(op).__name__})"
        if isinstance(op, keras.layers.MultiHeadAttention):
            self.check_policy(op)
            return multi_head_attention(self, op, args, kwargs)
        extra = [k for k, v in kwargs.items() if v is not None and k != "training"]
        if extra:
            raise self.refuse(f"it is called with {', '.join(extra)}=, which is not read")
        if isinstance(op, keras.Model):
            return read_model(self, op, args[0])
        if not isinstance(op, keras.layers.Layer):
            return self.operation(op, args)
        self.check_policy(op)
        return self.layer_call(op, args[0])

    def check_policy(self, layer: Any) -> None:
        policy = layer.dtype_policy
        if str(policy.compute_dtype) != "float32" or getattr(policy, "quantization_mode", None):
            raise DTypeError(f"{self.where} computes in {policy.compute_dtype} (policy {policy.name}); from_keras reads "
                             "float32 models: run it as it is with backends=[bc.keras()], which compares it in its own format")

    def layer_call(self, layer: Any, x: Any) -> Ref:
        L = self.keras.layers
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise self.refuse(f"data_format={layer.data_format!r} is not read, only 'channels_last'")
        if isinstance(layer, (L.Add, L.Subtract, L.Multiply)):
            op = {L.Add: "add", L.Subtract: "sub", L.Multiply: "mul"}[type(layer)]
            return self.merge(list(x), op)
        if isinstance(layer, L.Concatenate):
            xs = list(x)
            rank = len(xs[0].shape)
            if layer.axis % (rank + 1) == 0:
                raise self.refuse("it joins along the batch dimension, which would mix samples")
            dim = layer.axis % (rank + 1) - 1
            joined = list(xs[0].shape)
            joined[dim] = sum(v.shape[dim] for v in xs)
            return self.add("concat", tuple(xs), tuple(joined), dim=dim)
        if isinstance(x, (list, tuple)):
            raise self.refuse(f"it takes {len(x)} inputs, which is not read")
        if isinstance(layer, L.Dense):
            return self.dense(layer, x)
        if isinstance(layer, L.DepthwiseConv2D):
            return self.conv2d(layer, x, depthwise=True)
        if isinstance(layer, L.Conv2D) and type(layer).__name__ == "Conv2D":
            return self.conv2d(layer, x)
        if isinstance(layer, L.Conv1D) and type(layer).__name__ == "Conv1D":
            return self.conv1d(layer, x)
        if isinstance(layer, (L.MaxPooling2D, L.AveragePooling2D)):
            return self.pool2d(layer, x, "max_pool2d" if isinstance(layer, L.MaxPooling2D) else "avg_pool2d")
        if isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D)):
            return self.global_average(layer, x)
        if isinstance(layer, L.BatchNormalization):
            return self.batch_norm(layer, x)
        if isinstance(layer, L.LayerNormalization):
            return self.layer_norm(layer, x)
        if isinstance(layer, L.Embedding):
            if layer.mask_zero:
                raise self.refuse("Embedding(mask_zero=True) masks later layers, which is not read")
            table = self.weight(layer.embeddings, "embeddings")
            return self.add("embedding", (x,), (*x.shape, table.shape[1]), table=table)
        if isinstance(layer, L.Activation):
            return self.activation(x, layer.activation)
        if isinstance(layer, L.ReLU):
            six = layer.max_value is not None and float(layer.max_value) == 6.0
            if (layer.max_value is not None and not six) or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
                raise self.refuse("ReLU with a max_value other than 6, a negative_slope or a threshold is not read")
            return self.add("activation", (x,), x.shape, name="relu6" if six else "relu")
        if isinstance(layer, (L.LeakyReLU, L.ELU)):
            alpha = layer.negative_slope if isinstance(layer, L.LeakyReLU) else layer.alpha
            return self.add("activation", (x,), x.shape, name="leaky_relu" if isinstance(layer, L.LeakyReLU) else "elu",
                            alpha=float(alpha))
        if isinstance(layer, L.Softmax):
            axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
            if len(axes) != 1 or axes[0] % (len(x.shape) + 1) == 0:
                raise self.refuse(f"Softmax over axis {layer.axis} is not read: one axis of the sample")
            return self.add("softmax", (x,), x.shape, dim=axes[0] % (len(x.shape) + 1) - 1)
        if isinstance(layer, (L.Flatten, L.Reshape)):
            return self.reshape(x, tuple(int(d) for d in layer.compute_output_shape((None, *x.shape))[1:]))
        if isinstance(layer, L.Permute):
            return self.permute(x, [int(d) - 1 for d in layer.dims])
        if isinstance(layer, (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianDropout, L.GaussianNoise,
                              L.InputLayer)):
            return x  # the identity at inference
        raise self.refuse("it is not read")

    def operation(self, op: Any, args: tuple[Any, ...]) -> Ref:
        """A ``keras.ops`` call recorded in a functional model (``keras.ops.add(x, y)``, ``x * 0.5``)."""
        binary = {"Add": "add", "Subtract": "sub", "Multiply": "mul", "Divide": "div", "TrueDivide": "div"}
        kind = type(op).__name__
        if kind in binary and len(args) == 2:
            like = next(a for a in args if isinstance(a, Ref))
            a, b = (self.constant_or_ref(v, like) for v in args)
            return self.add("binary", (a, b), tuple(np.broadcast_shapes(a.shape, b.shape)), op=binary[kind])
        raise self.refuse(f"the operation {kind} is not read")


def read_model(reader: KerasGraphReader, model: Any, x: Any) -> Any:
    """The graph value(s) of ``model`` (a Sequential or functional model, or one nested in another) on ``x``."""
    keras = reader.keras
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = reader.read(layer, (x,), {})
        return x
    if not hasattr(model, "_run_through_graph") or not hasattr(model, "_nodes_by_depth"):
        reader.where = f"model {model.name!r} ({type(model).__name__})"
        raise reader.refuse("a subclassed model's graph is not read (build it functionally, or run it as it is with "
                            "backends=[bc.keras()])")
    # Keras's own walk of its graph, in its order; each layer or operation read on the values it is given.
    return model._run_through_graph([x] if isinstance(x, Ref) else list(x),
                                    operation_fn=lambda op: lambda *a, **kw: reader.read(op, a, kw))


def prune(nodes: list[GraphNode], output: int) -> tuple[list[GraphNode], int]:
    """The nodes ``output`` depends on (the input always), renumbered in order: permutes made needless by
    the one after them go."""
    keep = {0, output}
    for i in range(output, 0, -1):
        if i in keep:
            keep.update(nodes[i].inputs)
    index = {old: new for new, old in enumerate(sorted(keep))}
    kept = [GraphNode(n.op, tuple(index[j] for j in n.inputs), n.params, n.shape, n.name, n.source)
            for i, n in enumerate(nodes) if i in keep]
    return kept, index[output]


def graph_from_keras(keras: Any, model: Any, name: str, source: Any = None) -> GraphModel:
    """``model`` (one input, one output) read into a GraphModel run in Keras's layout (see the module's
    docstring); ``source``: the model the Keras backends run (default ``model``; a subclassed model whose
    call was traced into ``model``)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError(f"{name} has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); "
                                    "from_keras reads models of one input and one output (run it as it is with "
                                    "backends=[bc.keras()])")
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise UnsupportedLayerError(f"{name} takes samples of shape {shape}; from_keras needs every dimension fixed")
    dtype = str(model.inputs[0].dtype)
    if dtype != "float32" and "int" not in dtype:
        raise DTypeError(f"{name} takes {dtype} inputs; from_keras reads float32 inputs or integer token ids")
    reader = KerasGraphReader(keras, tuple(int(d) for d in shape))
    out = read_model(reader, model, Ref(0, reader.nodes[0].shape))
    out = out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
    if not isinstance(out, Ref):
        raise UnsupportedLayerError(f"{name} returns {type(out).__name__}, not one tensor; from_keras reads models of "
                                    "one output")
    nodes, output = prune(reader.nodes, out.index)
    return GraphModel(nodes, output, source_module=model if source is None else source, name=name,
                      input_dtype="float32" if dtype == "float32" else "int64", source_framework="keras")
