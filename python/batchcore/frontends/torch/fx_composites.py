"""torch modules that torch.fx keeps whole (it does not trace into ``torch.nn``'s own modules) and that
batchcore reads as several graph operations: ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``
(both ``norm_first`` settings) and ``nn.TransformerEncoder``. Each follows torch's own definition in eval
mode: projections are linear layers, the attention is the graph's attention over (heads, positions,
head dimension), dropout is the identity. Only ``batch_first=True`` modules keep the batch first."""

from __future__ import annotations

import math
from typing import Any

from .fx_ops import FxReader, _f32


def _linear(r: FxReader, x: int, weight: Any, bias: Any, what: str) -> int:
    w = _f32(weight, f"{r.node.name}.{what}.weight")
    b = None if bias is None else _f32(bias, f"{r.node.name}.{what}.bias")
    return r.add("linear", (x,), (*r.shape(x)[:-1], w.shape[0]), weight=w, bias=b)


def _split_heads(r: FxReader, x: int, heads: int) -> int:
    """(L, E) -> (heads, L, E / heads)."""
    length, width = r.shape(x)
    split = r.add("reshape", (x,), (length, heads, width // heads), shape=[length, heads, width // heads])
    return r.add("permute", (split,), (heads, length, width // heads), perm=[1, 0, 2])


def multihead_attention(r: FxReader, m: Any, q: int, k: int, v: int) -> int:
    """``nn.MultiheadAttention(q, k, v)[0]`` for (L, E) samples: in-projections, attention per head with
    scale 1/sqrt(head dim), the heads joined, the out-projection."""
    if not m.batch_first:
        raise r.refuse("MultiheadAttention(batch_first=False) takes the batch second; batchcore needs it first")
    if m.bias_k is not None or m.add_zero_attn:
        raise r.refuse("MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
    if any(len(r.shape(i)) != 2 for i in (q, k, v)):
        raise r.refuse("MultiheadAttention takes (batch, positions, features) inputs")
    E, heads = m.embed_dim, m.num_heads
    if m._qkv_same_embed_dim:
        weights = m.in_proj_weight.chunk(3)
    else:
        weights = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
    biases = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
    projected = [_split_heads(r, _linear(r, x, w, b, name), heads)
                 for x, w, b, name in zip((q, k, v), weights, biases, ("q_proj", "k_proj", "v_proj"), strict=False)]
    length = r.shape(q)[0]
    d = E // heads
    attended = r.add("attention", tuple(projected), (heads, length, d), scale=float(1 / math.sqrt(d)), causal=False)
    joined = r.add("permute", (attended,), (length, heads, d), perm=[1, 0, 2])
    flat = r.add("reshape", (joined,), (length, E), shape=[length, E])
    return _linear(r, flat, m.out_proj.weight, m.out_proj.bias, "out_proj")


def _activation(r: FxReader, layer: Any, x: int) -> int:
    nn, F = r.torch.nn, r.torch.nn.functional
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        name = "relu"
    elif act is F.gelu or isinstance(act, nn.GELU) and act.approximate == "none":
        name = "gelu"
    elif isinstance(act, nn.GELU) and act.approximate == "tanh":
        name = "gelu_tanh"
    else:
        raise r.refuse(f"an encoder layer with activation {act!r} is not supported (relu, gelu, GELU(approximate='tanh'))")
    return r.add("activation", (x,), r.shape(x), name=name)


def encoder_layer(r: FxReader, layer: Any, x: int) -> int:
    """``nn.TransformerEncoderLayer`` in eval mode, ``norm_first`` either way."""
    if not layer.self_attn.batch_first:
        raise r.refuse("TransformerEncoderLayer(batch_first=False) takes the batch second; batchcore needs it first")

    def attend(h: int) -> int:
        return multihead_attention(r, layer.self_attn, h, h, h)

    def feed_forward(h: int) -> int:
        hidden = _activation(r, layer, _linear(r, h, layer.linear1.weight, layer.linear1.bias, "linear1"))
        return _linear(r, hidden, layer.linear2.weight, layer.linear2.bias, "linear2")

    def residual(a: int, b: int) -> int:
        return r.add("binary", (a, b), r.shape(a), op="add")

    if layer.norm_first:
        x = residual(x, attend(r.layer_norm(layer.norm1, x)))
        return residual(x, feed_forward(r.layer_norm(layer.norm2, x)))
    x = r.layer_norm(layer.norm1, residual(x, attend(x)))
    return r.layer_norm(layer.norm2, residual(x, feed_forward(x)))


def encoder(r: FxReader, m: Any, x: int) -> int:
    """``nn.TransformerEncoder``: its layers in turn, then its final norm if it has one."""
    for layer in m.layers:
        x = encoder_layer(r, layer, x)
    return x if m.norm is None else r.layer_norm(m.norm, x)
