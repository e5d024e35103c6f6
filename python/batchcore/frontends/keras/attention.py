"""Keras's ``MultiHeadAttention`` read as graph operations: its query, key and value projections
(``EinsumDense`` kernels of shape (features, heads, head dimension)) as linear layers, the heads split to
(heads, positions, head dimension), the graph's attention per head with scale 1/sqrt(key_dim) (causal
with ``use_causal_mask=True``), the heads joined and the output projection (kernel (heads, value_dim,
features)) as a linear layer. Keras multiplies the query by the scale before the dot products; batchcore
multiplies each dot product (docs/orders.md): the same function, its own named order."""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ...errors import UnsupportedLayerError
from .ref import Ref


class KerasGraphReader(Protocol):
    """What of :class:`batchcore.frontends.keras.graph.KerasGraphReader` the attention uses (that module
    imports this one)."""

    def add(self, kind: str, inputs: tuple[Ref, ...], out_shape: tuple[int, ...], /, **params: Any) -> Ref: ...

    def weight(self, v: Any, what: str) -> np.ndarray: ...

    def refuse(self, why: str) -> UnsupportedLayerError: ...


def _projection(r: KerasGraphReader, dense: Any, x: Ref, heads: int, what: str) -> Ref:
    """An EinsumDense (features -> heads x head dimension) on (positions, features), split into heads:
    (heads, positions, head dimension)."""
    kernel = r.weight(dense.kernel, f"{what} kernel")  # (features, heads, dim)
    features, _, dim = kernel.shape
    weight = kernel.reshape(features, heads * dim).T.copy()
    bias = r.weight(dense.bias, f"{what} bias").reshape(heads * dim) if dense.bias is not None else None
    positions = x.shape[0]
    flat = r.add("linear", (x,), (positions, heads * dim), weight=weight, bias=bias)
    split = r.add("reshape", (flat,), (positions, heads, dim), shape=[positions, heads, dim])
    return r.add("permute", (split,), (heads, positions, dim), perm=[1, 0, 2])


def multi_head_attention(r: KerasGraphReader, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Ref:
    """``layer(query, value, key=None, use_causal_mask=False)`` on (positions, features) samples."""
    names = ("query", "value", "key")
    given = dict(zip(names, args, strict=False)) | {k: v for k, v in kwargs.items() if k in names}
    unread = [k for k, v in kwargs.items() if k not in (*names, "training", "use_causal_mask")
              and v not in (None, False)]
    if unread:
        raise r.refuse(f"masks and attention scores are not read yet ({', '.join(unread)}=)")
    query, value = given["query"], given["value"]
    key = given.get("key") or value
    if any(len(t.shape) != 2 for t in (query, key, value)):
        raise r.refuse("MultiHeadAttention is read over (positions, features) samples")
    if tuple(layer.attention_axes or (1,)) != (1,):
        raise r.refuse(f"attention_axes={layer.attention_axes} is not read")
    heads = int(layer.num_heads)
    q = _projection(r, layer._query_dense, query, heads, "query")
    k = _projection(r, layer._key_dense, key, heads, "key")
    v = _projection(r, layer._value_dense, value, heads, "value")
    positions, dv = query.shape[0], v.shape[2]
    scale = float(1 / math.sqrt(float(layer.key_dim)))
    attended = r.add("attention", (q, k, v), (heads, positions, dv), scale=scale,
                     causal=bool(kwargs.get("use_causal_mask", False)))
    joined = r.add("permute", (attended,), (positions, heads, dv), perm=[1, 0, 2])
    flat = r.add("reshape", (joined,), (positions, heads * dv), shape=[positions, heads * dv])
    out = layer._output_dense
    kernel = r.weight(out.kernel, "output kernel")  # (heads, value_dim, features)
    weight = kernel.reshape(heads * dv, kernel.shape[-1]).T.copy()
    bias = r.weight(out.bias, "output bias") if out.bias is not None else None
    return r.add("linear", (flat,), (positions, weight.shape[0]), weight=weight, bias=bias)
