"""The reader of an ONNX graph's nodes (:mod:`.graph` drives it): each operator it knows becomes operations of a
:class:`~batchcore.model.graph.GraphModel`; what it does not know raises UnsupportedLayerError naming the node, its
operator and where it comes from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..one_d import as_one_row
from ..resampling import nearest_upsample, transposed_conv_params
from .node_reader import NodeReader, as_f32

SUPPORTED = ("Gemm, MatMul by a constant or of two values (the batch in the same leading dimension of both), Conv "
             "and ConvTranspose (1-D and 2-D), Resize (nearest, whole factors, torch's export), MaxPool and AveragePool "
             "(1-D and 2-D), GlobalAveragePool, BatchNormalization, "
             "LayerNormalization (last axis), Relu, Sigmoid, Tanh, Gelu, Clip(0, 6), HardSigmoid (alpha 1/6, beta 1/2), "
             "HardSwish, Mish, LeakyRelu, Elu, Softmax, LogSoftmax, Add, Sub, Mul, Div (broadcasting), Pow by 2 or 3, "
             "Where(IsNaN(p), 0, p) as p, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Gather (an embedding, or one "
             "index of a sample dimension), Slice, Split, Concat, ReduceMean and ReduceSum over one axis, Identity, "
             "Dropout, Cast to float32")
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Mish": "mish"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
_SAME = frozenset({"Identity", "Dropout"})


class OnnxReader(NodeReader):
    """Reads each operator (see :data:`SUPPORTED`) into operations of the native graph."""

    def read_op(self, op: str) -> int:
        reads: dict[str, Callable[[], int]] = {
            "Gemm": self.gemm, "MatMul": self.matmul, "Conv": self.conv, "ConvTranspose": self.conv_transpose,
            "Resize": self.resize, "MaxPool": self.max_pool,
            "AveragePool": self.average_pool, "BatchNormalization": self.batch_norm,
            "LayerNormalization": self.layer_norm, "Gelu": self.gelu, "Clip": self.clip,
            "HardSigmoid": lambda: self.hard("hardsigmoid"), "HardSwish": lambda: self.hard("hardswish"),
            "LeakyRelu": lambda: self.with_alpha("leaky_relu", 0.01), "Elu": lambda: self.with_alpha("elu", 1.0),
            "Transpose": self.transpose,
            "Gather": self.gather, "Slice": self.slice, "Concat": self.concat, "ReduceMean": lambda: self.reduce(True),
            "ReduceSum": lambda: self.reduce(False), "Cast": self.cast,
            "GlobalAveragePool": lambda: self.add("adaptive_avg_pool2d", (self.data(),), output_size=[1, 1]),
            "Where": self.where, "Pow": self.power, "Softmax": lambda: self.softmax("softmax"),
            "LogSoftmax": lambda: self.softmax("log_softmax"),
        }
        if op in _BINARY:
            self.same_layouts()
            return self.add("binary", (self.value(0), self.value(1)), op=_BINARY[op])
        if op in _ACTIVATIONS:
            return self.add("activation", (self.data(),), name=_ACTIVATIONS[op])
        if op in _RESHAPES:
            return self.add("reshape", (self.data(),), shape=list(self.sample(self.node.output[0]) or ()))
        if op in _SAME:
            return self.data()
        if op not in reads:
            raise self.refuse(f"{op} is not supported; supported: {SUPPORTED}")
        return reads[op]()

    def linear(self, x: int, weight: np.ndarray, bias: np.ndarray | None) -> int:
        self.axis(-1, self._rank())  # refuses a contraction along the batch
        b = None if bias is None else as_f32(np.broadcast_to(bias, (weight.shape[0],)), f"{self.node.name} bias")
        return self.add("linear", (x,), weight=as_f32(weight, f"{self.node.name} weight"), bias=b)

    def gemm(self) -> int:
        if self.attr("transA", 0) or self.attr("alpha", 1.0) != 1.0 or self.attr("beta", 1.0) != 1.0:
            raise self.refuse("Gemm with transA, or alpha or beta other than 1, is not supported")
        w = self.const(1, "weight")
        assert w is not None
        return self.linear(self.data(), w if self.attr("transB", 0) else w.T, self.const(2, "bias"))

    def matmul(self) -> int:
        if self.operand(1) in self.ids:
            a, b = self.layout(0), self.layout(1)
            rank = self._rank()
            if a != b or len(self.full(self.operand(1))) != rank or a.axis >= rank - 2 or \
                    self.full(self.operand(0))[:-2] != self.full(self.operand(1))[:-2]:
                raise self.refuse("MatMul of two values that depend on the input is read with the batch in the same "
                                  "leading dimension of both and the same leading dimensions (no broadcasting)")
            return self.add("matmul", (self.data(0), self.data(1)))
        w = self.const(1, "weight")
        assert w is not None
        if w.ndim != 2:
            raise self.refuse(f"MatMul by a constant of shape {w.shape} is not supported, only a matrix")
        return self.linear(self.data(), w.T, None)

    def _pads(self, kernel: list[int]) -> list[int]:
        """Symmetric padding (begin of each spatial axis) from ``pads`` or ``auto_pad``; uneven padding is refused."""
        n = len(kernel)
        auto = self.attr("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            dil = list(self.attr("dilations", [1] * n))
            total = [d * (k - 1) for d, k in zip(dil, kernel, strict=True)]
            if any(t % 2 for t in total) or list(self.attr("strides", [1] * n)) != [1] * n:
                raise self.refuse(f"auto_pad={auto} pads unevenly here, which is not supported")
            return [t // 2 for t in total]
        pads = list(self.attr("pads", [0] * 2 * n))
        if len(pads) != 2 * n or pads[:n] != pads[n:]:
            raise self.refuse(f"pads {pads} are uneven (begin != end), which is not supported")
        return pads[:n]

    def _spatial(self, kind: str, window: list[int], **params: Any) -> int:
        """A 2-D operation, or a 1-D one over (channels, length) samples as 2-D of height 1 (:mod:`..one_d`);
        ``params`` get the spatial settings (strides, pads, dilations) of the node for either."""
        n = len(window)
        if n not in (1, 2):
            raise self.refuse(f"a {n}-D {self.node.op_type} is not supported, only 1-D and 2-D")
        spatial: dict[str, Any] = {"stride": list(self.attr("strides", [1] * n)), "padding": self._pads(window)}
        if kind != "avg_pool2d":
            spatial["dilation"] = list(self.attr("dilations", [1] * n))
        self.batch_first()
        x = self.data()
        if n == 2:
            return self.add(kind, (x,), None, **params, **spatial)
        out = self.sample(self.node.output[0])
        assert out is not None
        firsts = {"stride": 1, "padding": 0, "dilation": 1}
        return as_one_row(self.add, kind, x, self.nodes[x].shape, out, **params,
                          **{k: [firsts[k], *v] for k, v in spatial.items()})

    def conv(self) -> int:
        w = self.const(1, "weight")
        assert w is not None
        bias = self.const(2, "bias")
        kernel = list(w.shape[2:])
        weight = as_f32(w if w.ndim != 3 else w[:, :, None, :], f"{self.node.name} weight")
        b = None if bias is None else as_f32(bias, f"{self.node.name} bias")
        return self._spatial("conv2d", kernel, weight=weight, bias=b, groups=int(self.attr("group", 1)))

    def conv_transpose(self) -> int:
        """ConvTranspose as the core's convolution of the dilated input (:mod:`..resampling`); 1-D as height 1."""
        if self.attr("output_shape") is not None or self.attr("auto_pad", "NOTSET") != "NOTSET":
            raise self.refuse("ConvTranspose with output_shape or auto_pad is not supported (pads and output_padding are)")
        self.batch_first()
        w, bias = self.const(1, "weight"), self.const(2, "bias")
        assert w is not None
        n = w.ndim - 2
        if n not in (1, 2):
            raise self.refuse(f"a {n}-D ConvTranspose is not supported, only 1-D and 2-D")
        pads = list(self.attr("pads", [0] * 2 * n))
        output_padding = list(self.attr("output_padding", [0] * n))
        extra = [op + begin - end for op, begin, end in zip(output_padding, pads[:n], pads[n:], strict=True)]
        settings = [list(self.attr("strides", [1] * n)), pads[:n], extra, list(self.attr("dilations", [1] * n))]
        if n == 1:
            w = w[:, :, None, :]
            settings = [[first, *v] for v, first in zip(settings, (1, 0, 0, 1), strict=True)]
        try:
            if min(extra) < 0:
                raise ValueError(f"pads {pads} with output_padding {output_padding} crop the end, which is not supported")
            stride, begin, end_extra, dilation = settings
            params = transposed_conv_params(w, stride, begin, end_extra, dilation, int(self.attr("group", 1)))
        except ValueError as e:
            raise self.refuse(str(e)) from e
        b = None if bias is None else as_f32(bias, f"{self.node.name} bias")
        x = self.data()
        if n == 2:
            return self.add("conv2d", (x,), bias=b, **params)
        out = self.sample(self.node.output[0])
        assert out is not None
        return as_one_row(self.add, "conv2d", x, self.nodes[x].shape, out, bias=b, **params)

    def resize(self) -> int:
        """Resize as torch exports nearest upsampling (asymmetric coordinates, floor), by whole factors."""
        if (self.attr("mode", "nearest"), self.attr("coordinate_transformation_mode", "half_pixel"),
                self.attr("nearest_mode", "round_prefer_floor")) != ("nearest", "asymmetric", "floor"):
            raise self.refuse("Resize is read as nearest upsampling with asymmetric coordinates and floor rounding "
                              "(torch's export of Upsample(mode='nearest')) only")
        self.batch_first()
        x = self.data()
        shape, out = self.nodes[x].shape, self.sample(self.node.output[0])
        assert out is not None
        factors = [o // i for o, i in zip(out[1:], shape[1:], strict=True)]
        if any(o != i * f for o, i, f in zip(out[1:], shape[1:], factors, strict=True)) or out[0] != shape[0]:
            raise self.refuse(f"Resize from {shape} to {out} is not an upsampling by whole factors")
        return nearest_upsample(self.add, x, shape, factors)

    def max_pool(self) -> int:
        kernel = list(self.attr("kernel_shape"))
        if self.attr("storage_order", 0) or len([o for o in self.node.output if o]) > 1:
            raise self.refuse("max pooling is supported with one output (no indices)")
        return self._spatial("max_pool2d", kernel, kernel=kernel if len(kernel) == 2 else [1, *kernel],
                             ceil_mode=bool(self.attr("ceil_mode", 0)))

    def average_pool(self) -> int:
        kernel = list(self.attr("kernel_shape"))
        if list(self.attr("dilations", [1] * len(kernel))) != [1] * len(kernel):
            raise self.refuse("average pooling with dilation is not supported")
        return self._spatial("avg_pool2d", kernel, kernel=kernel if len(kernel) == 2 else [1, *kernel],
                             ceil_mode=bool(self.attr("ceil_mode", 0)),
                             count_include_pad=bool(self.attr("count_include_pad", 0)), divisor_override=0)

    def batch_norm(self) -> int:
        scale, bias, mean, var = (self.const(i, what).astype(np.float64)  # type: ignore[union-attr]
                                  for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        self.batch_first()
        folded = scale / np.sqrt(var + float(self.attr("epsilon", 1e-5)))  # in float64, rounded once to float32
        return self.add("channel_affine", (self.data(),), scale=as_f32(folded, self.node.name),
                        shift=as_f32(bias - mean * folded, self.node.name))

    def layer_norm(self) -> int:
        x = self.data()
        if int(self.attr("axis", -1)) % self._rank() != self._rank() - 1:
            raise self.refuse("layer normalization over other axes than the last is not supported")
        self.axis(-1, self._rank())  # refuses a normalization along the batch
        n = self.nodes[x].shape[-1]
        scale, bias = self.const(1, "scale"), self.const(2, "bias")
        return self.add("layer_norm", (x,), weight=as_f32(np.ones(n) if scale is None else np.broadcast_to(scale, (n,)),
                                                          self.node.name),
                        bias=as_f32(np.zeros(n) if bias is None else np.broadcast_to(bias, (n,)), self.node.name),
                        eps=float(self.attr("epsilon", 1e-5)))

    def gelu(self) -> int:
        approximate = self.attr("approximate", "none")
        return self.add("activation", (self.data(),), name="gelu_tanh" if approximate == "tanh" else "gelu")

    def hard(self, name: str) -> int:
        """HardSigmoid (alpha 1/6, beta 1/2: torch's exports) and HardSwish, as the core's definitions."""
        alpha, beta = float(self.attr("alpha", 1 / 6 if name == "hardswish" else 0.2)), float(self.attr("beta", 0.5))
        if abs(alpha - 1 / 6) > 1e-7 or beta != 0.5:
            raise self.refuse(f"HardSigmoid with alpha {alpha}, beta {beta} is not supported, only alpha 1/6 and beta "
                              "1/2 (torch's hardsigmoid)")
        return self.add("activation", (self.data(),), name=name)

    def with_alpha(self, name: str, default: float) -> int:
        return self.add("activation", (self.data(),), name=name, alpha=float(self.attr("alpha", default)))

    def where(self) -> int:
        """``Where(IsNaN(p), 0, p)``, the guard torch's attention export puts after its softmax for rows
        whose every score is masked to -inf, read as ``p``: the native graph's scores are finite (its masks
        are large negative constants, not -inf), so its softmax makes no NaN for the guard to replace."""
        tested = self.nan_tests.get(self.operand(0))
        zero = self.consts.get(self.operand(1))
        if tested is None or tested != self.operand(2) or zero is None or np.any(zero != 0):
            raise self.refuse("Where is read only as the NaN guard Where(IsNaN(p), 0, p)")
        return self.data(2)

    def power(self) -> int:
        """Pow by a constant 2 or 3 as products, x x and (x x) x (as torch computes them on the CPU)."""
        exponent = self.const(1, "exponent")
        if exponent is None or exponent.size != 1 or float(exponent.reshape(-1)[0]) not in (2.0, 3.0):
            raise self.refuse("Pow is read by a constant exponent 2 or 3 only")
        x = self.data()
        square = self.add("binary", (x, x), op="mul")
        return square if float(exponent.reshape(-1)[0]) == 2.0 else self.add("binary", (square, x), op="mul")

    def clip(self) -> int:
        low, high = self.const(1, "minimum"), self.const(2, "maximum")
        if low is None or high is None or (float(low), float(high)) != (0.0, 6.0):
            raise self.refuse("Clip is supported as ReLU6 only (minimum 0, maximum 6)")
        return self.add("activation", (self.data(),), name="relu6")

    def softmax(self, kind: str) -> int:
        return self.add(kind, (self.data(),), dim=self.axis(self.attr("axis", -1), self._rank()))

    def transpose(self) -> int:
        perm = list(self.attr("perm", list(range(self._rank()))[::-1]))
        moved = self.layout(0)
        if moved.group == 1:  # the batch's axis leaves the sample: the others keep their order
            perm = [p - (p > moved.axis) for p in perm if p != moved.axis]
        if perm == sorted(perm):
            return self.data()
        return self.add("permute", (self.data(),), perm=perm)

    def gather(self) -> int:
        if self.operand(1) in self.ids:  # a table looked up by token ids
            table = self.const(0, "table")
            if table is None or int(self.attr("axis", 0)) != 0 or table.ndim != 2:
                raise self.refuse("Gather is read as an embedding only: a constant 2-D table, indices from the input")
            return self.add("embedding", (self.data(1),), table=as_f32(table, f"{self.node.name} table"))
        index = self.const(1, "index")
        if index is None or index.ndim != 0:
            raise self.refuse("Gather of the input's values is supported by one constant index only")
        d = self.axis(self.attr("axis", 0), self._rank())
        x = self.data()
        length = self.nodes[x].shape[d]
        i = int(index) % length
        kept = tuple(1 if j == d else s for j, s in enumerate(self.nodes[x].shape))
        one = self.add("slice", (x,), kept, dim=d, start=i, stop=i + 1, step=1)
        return self.add("reshape", (one,), shape=list(self.sample(self.node.output[0]) or ()))

    def slice(self) -> int:
        starts, ends = self.const(1, "starts"), self.const(2, "ends")
        axes, steps = self.const(3, "axes"), self.const(4, "steps")
        assert starts is not None and ends is not None
        x = self.data()
        rank = self._rank()
        axes = np.arange(len(starts)) if axes is None else axes
        steps = np.ones(len(starts), np.int64) if steps is None else steps
        for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
            d = self.axis(int(a), rank)
            length = self.nodes[x].shape[d]
            begin, stop, step = slice(int(s), int(e), int(st)).indices(length)
            if step < 1:
                raise self.refuse("a Slice with a negative step is not supported")
            if (begin, stop, step) == (0, length, 1):
                continue
            shape = tuple(len(range(begin, stop, step)) if j == d else n for j, n in enumerate(self.nodes[x].shape))
            x = self.add("slice", (x,), shape, dim=d, start=begin, stop=stop, step=step)
        return x

    def split(self) -> list[int]:
        x = self.data()
        d = self.axis(self.attr("axis", 0), self._rank())
        sizes = [self.sample(o)[d] for o in self.node.output if o]  # type: ignore[index]
        parts, start = [], 0
        for n in sizes:
            shape = tuple(n if j == d else s for j, s in enumerate(self.nodes[x].shape))
            parts.append(self.add("slice", (x,), shape, dim=d, start=start, stop=start + n, step=1))
            start += n
        return parts

    def concat(self) -> int:
        parts = [i for i in self.node.input if i]
        if not all(p in self.ids for p in parts):
            raise self.refuse("Concat of a constant with values that depend on the input is not supported")
        self.same_layouts()
        return self.add("concat", tuple(self.ids[p] for p in parts), dim=self.axis(self.attr("axis"), self._rank()))

    def reduce(self, mean: bool) -> int:
        axes = self.attr("axes")
        if axes is None:
            given = self.const(1, "axes")
            axes = None if given is None else list(given.reshape(-1))
        if axes is None or len(axes) != 1:
            raise self.refuse(f"{self.node.op_type} over {axes} is not supported: one axis of the sample")
        x = self.data()
        d = self.axis(int(axes[0]), self._rank())
        shape = tuple(s for j, s in enumerate(self.nodes[x].shape) if j != d) or (1,)
        reduced = self.add("reduce", (x,), shape, dim=d, mean=mean)
        out = self.sample(self.node.output[0])
        return reduced if out == shape else self.add("reshape", (reduced,), shape=list(out or ()))

    def cast(self) -> int:
        import onnx

        if self.attr("to") != onnx.TensorProto.FLOAT or self.runs[2][self.operand(0)].dtype != np.float32:
            raise self.refuse("a Cast is supported only from float32 to float32")
        return self.data()
