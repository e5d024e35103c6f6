"""The reader of a ``torch.export`` capture's aten operations (:mod:`.export_trace` drives it): each becomes
operations of a :class:`~batchcore.model.graph.GraphModel`, or is refused naming the node, the operation
and the line of code it comes from.

Beyond what a traced module's reader knows, a capture spells a few things its own way: parameters are
operands (``aten.linear(x, weight, bias)``), GPT-2's Conv1D is ``view(x, (-1, K))`` then ``addmm`` then a
view back (the batch merged with the positions in between, read as one linear layer over the last
dimension), ``split`` and ``select`` are slices, ``pow(x, 2 or 3)`` is products (as torch computes it), and
the empty key and value caches a model starts from are joined to its keys and values (left out).
"""

from __future__ import annotations

from typing import Any

from .fx_ops import SUPPORTED, FxReader, _f32

_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "rsub": "rsub"}
_ACTIVATIONS = {"relu": "relu", "silu": "silu", "tanh": "tanh", "sigmoid": "sigmoid", "hardsigmoid": "hardsigmoid",
                "hardswish": "hardswish", "mish": "mish"}
# Operations that hand their input on unchanged (eval mode, float32 in and out) or only reshape it.
_SAME = frozenset({"dropout", "contiguous", "clone", "alias", "detach", "lift_fresh_copy", "feature_dropout"})
_RESHAPES = frozenset({"view", "reshape", "_unsafe_view", "unsqueeze", "squeeze", "flatten", "unflatten"})
EXPORT_SUPPORTED = (SUPPORTED + "; through torch.export also: linear/addmm, embedding, layer_norm, gelu, split, "
                    "select, slice, pow by 2 or 3, expand to the same shape, casts to float32")


def _opname(node: Any) -> str:
    return str(getattr(node.target, "_opname", getattr(node.target, "__name__", node.target)))


class AtenReader(FxReader):
    """Reads a graph of aten operations (``ExportedProgram.module()``)."""

    def is_shape_read(self, node: Any) -> bool:
        return _opname(node) in ("sym_size", "size")

    def _const(self, arg: Any, what: str) -> Any:
        if arg is None:
            return None
        value = self.consts.get(arg) if isinstance(arg, self.torch.fx.Node) else arg
        if not isinstance(value, self.torch.Tensor):
            raise self.refuse(f"its {what} depends on the input; only fixed parameters are supported there")
        return value

    def _data(self, arg: Any) -> int:
        if arg in self.merged:  # a view back to batch-first of a value whose batch was merged with rows
            return int(self.merged[arg])
        if arg not in self.ids:
            raise self.refuse("its first operand does not depend on the input")
        return int(self.ids[arg])

    def _linear(self, x: int, weight: Any, bias: Any, out_shape: tuple[int, ...] | None = None) -> int:
        b = None if bias is None else _f32(bias, f"{self.node.name} bias")
        return self.add("linear", (x,), out_shape, weight=_f32(weight, f"{self.node.name} weight"), bias=b)

    def _slice(self, x: int, dim: int, start: Any, stop: Any, step: Any = 1,
               out_shape: tuple[int, ...] | None = None) -> int:
        """x's entries start:stop:step along full-tensor dimension ``dim`` (the batch's: only all of it)."""
        rank = len(self.shape(x)) + 1
        d = int(dim) % rank
        length = self.shape(x)[d - 1] if d else None
        begin, end, _ = slice(start, stop, step).indices(length if length is not None else 2**62)
        if d == 0:
            if (begin, int(step or 1)) != (0, 1) or stop is not None and int(stop) < 2**62:
                raise self.refuse("it slices the batch dimension, which would mix samples")
            return x
        assert length is not None
        if (begin, end, int(step or 1)) == (0, length, 1):
            return x
        return self.add("slice", (x,), out_shape, dim=d - 1, start=begin, stop=end, step=int(step or 1))

    # -- the operations -------------------------------------------------------------------------------
    def read_node(self, node: Any) -> int:
        name, a = _opname(node), self.arg
        if name in _BINARY:
            if name == "rsub":
                return self.binary("sub", a(1, "other"), a(0, "input"), node.kwargs.get("alpha"))
            return self.binary(_BINARY[name], a(0, "input"), a(1, "other"), node.kwargs.get("alpha"))
        if name == "scaled_dot_product_attention":
            if a(4, "dropout_p", 0.0) or node.kwargs.get("enable_gqa"):
                raise self.refuse("scaled_dot_product_attention with dropout or enable_gqa is not supported")
            q, k, v = (self.value(a(i, n)) for i, n in enumerate(("query", "key", "value")))
            return self.attention(q, k, v, node.kwargs.get("scale"), a(5, "is_causal", False), a(3, "attn_mask"))
        if name == "embedding":
            return self.embedding(self._data(a(1, "indices")), self._const(a(0, "weight"), "table"))
        if name == "cat":
            parts = [p for p in a(0, "tensors") if p in self.ids or self._const(p, "operand").numel()]
            if len(parts) != 1:
                raise self.refuse("concatenation through torch.export is read only where all but one part is empty "
                                  "(a model's empty key and value caches)")
            return self._data(parts[0])
        x = self._data(node.args[0] if node.args else None)
        if name in _SAME:
            return x
        if name in _RESHAPES:
            return self.reshape(x)
        if name in _ACTIVATIONS:
            return self.activation(_ACTIVATIONS[name], x)
        if name == "leaky_relu":
            return self.activation("leaky_relu", x, alpha=a(1, "negative_slope", 0.01))
        if name == "elu":
            return self.elu(x, a(1, "alpha", 1.0), a(2, "scale", 1.0), a(3, "input_scale", 1.0))
        if name == "hardtanh" and (float(a(1, "min_val", -1.0)), float(a(2, "max_val", 1.0))) == (0.0, 6.0):
            return self.activation("relu6", x)
        if name in ("to", "_to_copy", "type_as"):
            if self.shape(x) != self.shapes[node] or node.kwargs.get("dtype", self.torch.float32) != self.torch.float32:
                raise self.refuse("a cast to another dtype than float32 is not supported")
            return x
        if name == "expand":
            if tuple(self.shapes[node]) != self.shape(x):
                raise self.refuse("expand that copies values along a dimension is not supported")
            return x
        if name == "linear":
            return self._linear(x, self._const(a(1, "weight"), "weight"), self._const(a(2, "bias"), "bias"))
        if name == "layer_norm":
            shape = list(a(1, "normalized_shape"))
            if len(shape) != 1:
                raise self.refuse(f"layer norm over {tuple(shape)} is not supported, only the last dimension")
            w, b = self._const(a(2, "weight"), "weight"), self._const(a(3, "bias"), "bias")
            n = shape[0]
            return self.add("layer_norm", (x,), self.shape(x),
                            weight=_f32(w if w is not None else self.torch.ones(n), self.node.name),
                            bias=_f32(b if b is not None else self.torch.zeros(n), self.node.name),
                            eps=float(a(4, "eps", 1e-5)))
        if name == "gelu":
            return self.activation("gelu", x, node.kwargs.get("approximate", a(1, "approximate", "none")))
        if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
            return self.softmax(x, a(1, "dim"), "log_softmax" if "log" in name else "softmax")
        if name == "pow" and isinstance(a(1, "exponent"), (int, float)) and float(a(1, "exponent")) in (2.0, 3.0):
            square = self.add("binary", (x, x), op="mul")
            return square if float(a(1, "exponent")) == 2.0 else self.add("binary", (square, x), op="mul")
        if name == "permute":
            return self.permute(x, list(a(1, "dims")))
        if name == "transpose":
            return self.transpose(x, a(1, "dim0"), a(2, "dim1"))
        if name == "slice":
            return self._slice(x, a(1, "dim", 0), a(2, "start"), a(3, "end"), a(4, "step", 1))
        if name == "select":
            d, i = int(a(1, "dim")), int(a(2, "index"))
            rank = len(self.shape(x)) + 1
            length = self.shape(x)[d % rank - 1] if d % rank else 0
            one = self._slice(x, d, i % length if length else i, i % length + 1 if length else i + 1, 1,
                              tuple(s if j != d % rank - 1 else 1 for j, s in enumerate(self.shape(x))))
            return self.reshape(one)
        if name in ("mean", "sum"):
            dims = a(1, "dim")
            if isinstance(dims, (list, tuple)) and len(dims) == 1:
                dims = dims[0]
            return self.reduce(x, dims, a(2, "keepdim", False), name == "mean", node.kwargs.get("dtype"))
        raise self.refuse(f"aten.{name} is not supported; supported: {EXPORT_SUPPORTED}")

    def makes_a_tuple(self, node: Any) -> bool:
        """``split`` (equal chunks, or the sizes given): one slice per part."""
        name = _opname(node)
        if name not in ("split", "split_with_sizes") or node.args[0] not in self.ids:
            return False
        x, dim = self.ids[node.args[0]], int(self.arg(2, "dim", 0))
        d = dim % (len(self.shape(x)) + 1)
        if d == 0:
            raise self.refuse("it splits the batch dimension, which would mix samples")
        length = self.shape(x)[d - 1]
        size = self.arg(1, "split_size")
        sizes = list(size) if isinstance(size, (list, tuple)) else [int(size)] * -(-length // int(size))
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.tuples[node] = []
        for start, n in zip(starts, sizes, strict=True):
            n = min(n, length - start)
            shape = tuple(n if j == d - 1 else s for j, s in enumerate(self.shape(x)))
            self.tuples[node].append(self._slice(x, d, start, start + n, 1, shape))
        return True

    def reads_merged_rows(self, node: Any, runs: dict[int, dict[Any, Any]]) -> bool:
        """``view(x, (-1, K))`` of a batch-first x, and ``addmm(bias, it, W)`` / ``linear`` on it: a linear layer
        over x's last dimension (the rows merged with the batch stay rows; a view back makes them batch-first
        again, read as a reshape)."""
        name = _opname(node)
        first = node.args[0] if node.args else None
        if name in _RESHAPES and first in self.ids:
            v2, v3 = runs[2].get(node), runs[3].get(node)
            x_shape = self.shape(self.ids[first])
            per_sample = int(self.torch.tensor(x_shape).prod()) if x_shape else 1
            if (v2 is not None and v3 is not None and v2.dim() == 2 and v2.shape[1] == x_shape[-1]
                    and v2.numel() == 2 * per_sample and v3.numel() == 3 * per_sample):
                self.merged[node] = self.ids[first]
                return True
            return False
        merged_input = node.args[1] if name == "addmm" else first
        if merged_input not in self.merged or name not in ("addmm", "linear", "mm"):
            return False
        x = self.merged[merged_input]
        if name == "addmm":
            weight, bias = self._const(node.args[2], "weight").t(), self._const(node.args[0], "bias")
        elif name == "mm":
            weight, bias = self._const(node.args[1], "weight").t(), None
        else:
            weight, bias = self._const(self.arg(1, "weight"), "weight"), self._const(self.arg(2, "bias"), "bias")
        if self.arg(3, "beta", 1) != 1 or self.arg(4, "alpha", 1) != 1:
            raise self.refuse("addmm with beta or alpha other than 1 is not supported")
        out_shape = (*self.shape(x)[:-1], int(weight.shape[0]))
        self.merged[node] = self._linear(x, weight.contiguous(), bias, out_shape)
        return True
