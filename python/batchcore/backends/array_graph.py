"""A graph model's forward pass written with NumPy (:class:`~batchcore.backends.arrays.NumpyBackend` runs it):
what NumPy itself does with each operation, in its own orders (matrix products and convolutions through
its BLAS, ``np.matmul`` over im2col rows; sums and softmaxes through its own pairwise reductions). The
definitions it follows are docs/orders.md's (the same shapes, padding and rounding of parameters), not
their orders: this is the library, as a user who writes the model in NumPy would run it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..model.graph import GraphModel, GraphNode

f32 = np.float32


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # a declared dependency

    return erf(x).astype(f32)


ACTIVATIONS: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "relu": lambda x, a: np.maximum(x, f32(0)),
    "gelu": lambda x, a: f32(0.5) * x * (f32(1) + _erf(x * f32(1 / np.sqrt(2)))),
    "silu": lambda x, a: x / (f32(1) + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "gelu_tanh": lambda x, a: f32(0.5) * x * (f32(1) + np.tanh(f32(np.sqrt(2 / np.pi)) * (x + f32(0.044715) * x ** 3))),
    "sigmoid": lambda x, a: f32(1) / (f32(1) + np.exp(-x)),
    "relu6": lambda x, a: np.clip(x, f32(0), f32(6)),
    "hardsigmoid": lambda x, a: np.clip(x + f32(3), f32(0), f32(6)) / f32(6),
    "hardswish": lambda x, a: x * np.clip(x + f32(3), f32(0), f32(6)) / f32(6),
    "mish": lambda x, a: x * np.tanh(np.log1p(np.exp(x))),
    "leaky_relu": lambda x, a: np.where(x > 0, x, x * f32(a)),
    "elu": lambda x, a: np.where(x > 0, x, f32(a) * np.expm1(x)),
}


def _padded(x: np.ndarray, pad: tuple[int, int], end: tuple[int, int], value: float,
            dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Images x (B, C, H, W) with ``dilation - 1`` entries of ``value`` between neighbours, ``pad`` around and
    ``end`` more at the end of each spatial dimension."""
    B, C, H, W = x.shape
    (ph, pw), (eh, ew), (sh, sw) = pad, end, dilation
    out = np.full((B, C, (H - 1) * sh + 1 + 2 * ph + eh, (W - 1) * sw + 1 + 2 * pw + ew), value, x.dtype)
    out[:, :, ph:ph + (H - 1) * sh + 1:sh, pw:pw + (W - 1) * sw + 1:sw] = x
    return out


def _windows(x: np.ndarray, kernel: list[int], stride: list[int], dilation: list[int], out: tuple[int, ...]) -> np.ndarray:
    """(B, C, OH, OW, KH, KW): the taps of each output position of padded images x."""
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    w = sliding_window_view(x, span, axis=(2, 3))[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    return w[:, :, :out[0], :out[1]]


def _conv2d(n: GraphNode, x: np.ndarray) -> np.ndarray:
    p = n.params
    w, groups = p["weight"], p["groups"]
    dilated = _padded(x, p["padding"], p.get("extra_padding") or (0, 0), 0.0, p.get("input_dilation") or (1, 1))
    cols = _windows(dilated, list(w.shape[2:]), p["stride"], p["dilation"], n.shape[1:])
    B, (OH, OW) = len(x), n.shape[1:]
    per_group, cg = w.shape[0] // groups, w.shape[1]
    parts = []
    for g in range(groups):
        rows = cols[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(B * OH * OW, -1)
        parts.append((rows @ w[g * per_group:(g + 1) * per_group].reshape(per_group, -1).T).reshape(B, OH, OW, per_group))
    y = np.concatenate(parts, axis=3).transpose(0, 3, 1, 2)
    return y if p["bias"] is None else y + p["bias"][:, None, None]


def _pool2d(n: GraphNode, x: np.ndarray) -> np.ndarray:
    p = n.params
    OH, OW = n.shape[1:]
    dilation = p.get("dilation", [1, 1])
    # padding, and at the end what ceil_mode's last window needs beyond it
    need = [(o - 1) * s + (k - 1) * d + 1 - (size + 2 * pad) for o, s, k, d, size, pad in
            zip((OH, OW), p["stride"], p["kernel"], dilation, x.shape[2:], p["padding"], strict=True)]
    end = (max(need[0], 0), max(need[1], 0))
    if n.op == "max_pool2d":
        return _windows(_padded(x, p["padding"], end, -np.inf), p["kernel"], p["stride"], dilation, (OH, OW)).max(axis=(4, 5))
    sums = _windows(_padded(x, p["padding"], end, 0.0), p["kernel"], p["stride"], dilation, (OH, OW)).sum(axis=(4, 5))
    if p["divisor_override"]:
        return sums / f32(p["divisor_override"])
    ones = np.ones((1, 1, *x.shape[2:]), x.dtype)
    if p["count_include_pad"]:  # the window clipped to the padded input (not to ceil_mode's extra)
        ones = _padded(ones, p["padding"], (0, 0), 1.0)
        counted = _padded(ones, (0, 0), end, 0.0)
    else:
        counted = _padded(ones, p["padding"], end, 0.0)
    counts = _windows(counted, p["kernel"], p["stride"], dilation, (OH, OW)).sum(axis=(4, 5))
    return sums / np.maximum(counts, f32(1))


def _adaptive_avg_pool2d(n: GraphNode, x: np.ndarray) -> np.ndarray:
    (OH, OW), (H, W) = n.shape[1:], x.shape[2:]
    out = np.empty((*x.shape[:2], OH, OW), x.dtype)
    for i in range(OH):
        for j in range(OW):
            h0, h1, w0, w1 = i * H // OH, -(-(i + 1) * H // OH), j * W // OW, -(-(j + 1) * W // OW)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def _softmax(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    if log:
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _attention(n: GraphNode, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    scores = (q @ np.swapaxes(k, -1, -2)) * f32(n.params["scale"])
    if n.params["causal"]:
        lq, lk = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((lq, lk), bool)), scores, -np.inf)
    return _softmax(scores, -1, False) @ v


def _layer_norm(n: GraphNode, x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + f32(n.params["eps"])) * n.params["weight"] + n.params["bias"]


def _slice(n: GraphNode, x: np.ndarray) -> np.ndarray:
    p = n.params
    index = [slice(None)] * x.ndim
    index[p["dim"] + 1] = slice(p["start"], p["stop"], p["step"])
    return x[tuple(index)]


BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
OPS: dict[str, Callable[[GraphNode, list[np.ndarray]], np.ndarray]] = {
    "constant": lambda n, ins: n.params["value"],
    "linear": lambda n, ins: ins[0] @ n.params["weight"].T + (0 if n.params["bias"] is None else n.params["bias"]),
    "conv2d": lambda n, ins: _conv2d(n, ins[0]),
    "max_pool2d": lambda n, ins: _pool2d(n, ins[0]),
    "avg_pool2d": lambda n, ins: _pool2d(n, ins[0]),
    "adaptive_avg_pool2d": lambda n, ins: _adaptive_avg_pool2d(n, ins[0]),
    "channel_affine": lambda n, ins: ins[0] * n.params["scale"].reshape(-1, *[1] * (ins[0].ndim - 2))
    + n.params["shift"].reshape(-1, *[1] * (ins[0].ndim - 2)),
    "activation": lambda n, ins: ACTIVATIONS[n.params["name"]](ins[0], n.params.get("alpha")),
    "softmax": lambda n, ins: _softmax(ins[0], n.params["dim"] + 1, False),
    "log_softmax": lambda n, ins: _softmax(ins[0], n.params["dim"] + 1, True),
    "reduce": lambda n, ins: (np.mean if n.params["mean"] else np.sum)(ins[0], axis=n.params["dim"] + 1),
    "layer_norm": lambda n, ins: _layer_norm(n, ins[0]),
    "binary": lambda n, ins: BINARY[n.params["op"]](ins[0], ins[1]),
    "reshape": lambda n, ins: ins[0].reshape(len(ins[0]), *n.shape),
    "permute": lambda n, ins: ins[0].transpose(0, *[d + 1 for d in n.params["perm"]]),
    "attention": lambda n, ins: _attention(n, *ins),
    "embedding": lambda n, ins: n.params["table"][ins[0].astype(np.int64)],
    "concat": lambda n, ins: np.concatenate(ins, axis=n.params["dim"] + 1),
    "slice": lambda n, ins: _slice(n, ins[0]),
    "matmul": lambda n, ins: ins[0] @ ins[1],
}


def graph_forward(model: GraphModel, x: np.ndarray) -> np.ndarray:
    """The graph's output for the batch ``x`` (float32, or int64 token ids), float32, C-contiguous."""
    values: list[Any] = [x]
    for n in model.nodes[1:]:
        v = np.asarray(OPS[n.op](n, [values[i] for i in n.inputs]), dtype=f32)
        values.append(v if n.op == "constant" else v.reshape(len(x), *n.shape))  # a reduction to (1,) included
    return np.ascontiguousarray(values[model.output])
