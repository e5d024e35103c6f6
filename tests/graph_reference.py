"""A slow reference for graph models, written from the definitions in docs/orders.md: one sample at a
time, every dot product through bc.orders.dot (itself tested against exact rationals), every sum and
comparison as float32 scalar operations in the defined order, the row functions by their scalar
definitions (``_core.testing.row_layer(..., simd="definition")``). Nothing here calls the graph's own code."""

from __future__ import annotations

import numpy as np

import batchcore as bc
from batchcore import _core

f32 = np.float32


def _dot(a, w, b, order):
    return bc.orders.dot(np.ascontiguousarray(a, np.float32), np.ascontiguousarray(w, np.float32), float(b), order)


def linear(x, weight, bias, order):
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty((len(rows), weight.shape[0]), np.float32)
    for r, row in enumerate(rows):
        for n in range(weight.shape[0]):
            out[r, n] = _dot(row, weight[n], 0.0 if bias is None else bias[n], order)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def conv2d(x, weight, bias, stride, padding, dilation, groups, order):
    C, H, W = x.shape
    co_n, cg, kh_n, kw_n = weight.shape
    OH = (H + 2 * padding[0] - dilation[0] * (kh_n - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (kw_n - 1) - 1) // stride[1] + 1
    out = np.empty((co_n, OH, OW), np.float32)
    for co in range(co_n):
        g = co // (co_n // groups)
        for oh in range(OH):
            for ow in range(OW):
                taps = []
                for ci in range(cg):
                    for kh in range(kh_n):
                        for kw in range(kw_n):
                            ih = oh * stride[0] - padding[0] + kh * dilation[0]
                            iw = ow * stride[1] - padding[1] + kw * dilation[1]
                            inside = 0 <= ih < H and 0 <= iw < W
                            taps.append(x[g * cg + ci, ih, iw] if inside else f32(0.0))  # a padded tap: +0
                out[co, oh, ow] = _dot(taps, weight[co].ravel(), 0.0 if bias is None else bias[co], order)
    return out


def dilated_and_padded(x, input_dilation, padding, extra_padding):
    """x with input_dilation - 1 zeros (+0) between neighbours and padding[i] (+ extra_padding[i] at the end)
    zeros around: the input a transposed convolution's taps read (docs/orders.md)."""
    C, H, W = x.shape
    (sh, sw), (ph, pw), (eh, ew) = input_dilation, padding, extra_padding
    out = np.zeros((C, (H - 1) * sh + 1 + 2 * ph + eh, (W - 1) * sw + 1 + 2 * pw + ew), np.float32)
    out[:, ph:ph + (H - 1) * sh + 1:sh, pw:pw + (W - 1) * sw + 1:sw] = x
    return out


def _out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= n + p else out


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    C, H, W = x.shape
    OH = _out_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = _out_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.empty((C, OH, OW), np.float32)
    for c in range(C):
        for oh in range(OH):
            for ow in range(OW):
                best = None
                for kh in range(kernel[0]):
                    for kw in range(kernel[1]):
                        ih, iw = oh * stride[0] - padding[0] + kh * dilation[0], ow * stride[1] - padding[1] + kw * dilation[1]
                        if 0 <= ih < H and 0 <= iw < W and (best is None or x[c, ih, iw] > best):
                            best = x[c, ih, iw]
                out[c, oh, ow] = best
    return out


def _window_sum(plane, h0, h1, w0, w1):
    s = None
    for h in range(h0, h1):
        for w in range(w0, w1):
            s = plane[h, w] if s is None else f32(s + plane[h, w])
    return s


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    C, H, W = x.shape
    OH = _out_size(H, kernel[0], stride[0], padding[0], 1, ceil_mode)
    OW = _out_size(W, kernel[1], stride[1], padding[1], 1, ceil_mode)
    out = np.empty((C, OH, OW), np.float32)
    for c in range(C):
        for oh in range(OH):
            for ow in range(OW):
                h0, w0 = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
                h1, w1 = min(h0 + kernel[0], H + padding[0]), min(w0 + kernel[1], W + padding[1])
                padded = (h1 - h0) * (w1 - w0)
                h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
                if h0 >= h1 or w0 >= w1:
                    out[c, oh, ow] = 0.0
                    continue
                divisor = divisor_override or (padded if count_include_pad else (h1 - h0) * (w1 - w0))
                out[c, oh, ow] = f32(_window_sum(x[c], h0, h1, w0, w1) / f32(divisor))
    return out


def adaptive_avg_pool2d(x, output_size):
    C, H, W = x.shape
    OH, OW = output_size
    out = np.empty((C, OH, OW), np.float32)
    for c in range(C):
        for oh in range(OH):
            h0, h1 = oh * H // OH, -(-(oh + 1) * H // OH)
            for ow in range(OW):
                w0, w1 = ow * W // OW, -(-(ow + 1) * W // OW)
                out[c, oh, ow] = f32(_window_sum(x[c], h0, h1, w0, w1) / f32((h1 - h0) * (w1 - w0)))
    return out


def row_function(x, name, p0=None, p1=None, eps=0.0, alpha=None):
    """layers.hpp's scalar definition along the last dimension (alpha: leaky_relu's or elu's parameter)."""
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    return _core.testing.row_layer(rows, name, p0, p1, eps, simd="definition",
                                   alpha=0.0 if alpha is None else alpha).reshape(x.shape)


def attention(q, k, v, scale, causal, order):
    """Per group: s_ij = dot(q_i, k_j) * scale, the row softmax over j (j <= i when causal, the rest +0),
    o_ic = dot(p_i, v[:, c]) over the keys."""
    lead = q.shape[:-2]
    q, k, v = (a.reshape(-1, *a.shape[-2:]) for a in (q, k, v))
    out = np.empty((len(q), q.shape[1], v.shape[2]), np.float32)
    for g in range(len(q)):
        for i in range(q.shape[1]):
            seen = min(i + 1, k.shape[1]) if causal else k.shape[1]
            scores = np.array([f32(_dot(q[g, i], k[g, j], 0.0, order) * f32(scale)) for j in range(seen)], np.float32)
            p = np.zeros(k.shape[1], np.float32)
            p[:seen] = row_function(scores[None, :], "softmax")[0]
            for c in range(v.shape[2]):
                out[g, i, c] = _dot(p, v[g, :, c], 0.0, order)
    return out.reshape(*lead, *out.shape[1:])


def matmul(a, b, order):
    """Per group of the leading dimensions: o_ij = dot(a_i, b[:, j]) over k."""
    lead = a.shape[:-2]
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    out = np.empty((len(a), a.shape[1], b.shape[2]), np.float32)
    for g in range(len(a)):
        for i in range(a.shape[1]):
            for j in range(b.shape[2]):
                out[g, i, j] = _dot(a[g, i], b[g, :, j], 0.0, order)
    return out.reshape(*lead, *out.shape[1:])


def log_softmax(x):
    """Along the last dimension: m = the maximum, s = sum of exp(x_i - m) left to right, (x_i - m) - log s,
    exp and log by math_fixed.hpp's scalar definitions."""
    out = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        row = x[index]
        m = row[0]
        for v in row[1:]:
            m = v if v > m else m
        shifted = (row - m).astype(np.float32)
        s = f32(0.0)
        for e in _core.testing.fixed_math(shifted, "exp"):
            s = f32(s + e)
        out[index] = shifted - _core.testing.fixed_math(np.array([s], np.float32), "log")[0]
    return out


BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def run_sample(model, x, order="seq"):
    """One sample's output by the definitions (see the module's docstring)."""
    values: list = []
    for node in model.nodes:
        p, ins = node.params, [values[i] for i in node.inputs]
        op = node.op
        if op == "input":
            v = x
        elif op == "constant":
            v = p["value"]
        elif op == "linear":
            v = linear(ins[0], p["weight"], p["bias"], order)
        elif op == "conv2d" and p.get("input_dilation") is not None:  # a transposed convolution's
            x = dilated_and_padded(ins[0], p["input_dilation"], p["padding"], p.get("extra_padding") or [0, 0])
            v = conv2d(x, p["weight"], p["bias"], p["stride"], [0, 0], p["dilation"], p["groups"], order)
        elif op == "conv2d":
            v = conv2d(ins[0], p["weight"], p["bias"], p["stride"], p["padding"], p["dilation"], p["groups"], order)
        elif op == "max_pool2d":
            v = max_pool2d(ins[0], p["kernel"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
        elif op == "avg_pool2d":
            v = avg_pool2d(ins[0], p["kernel"], p["stride"], p["padding"], p["ceil_mode"], p["count_include_pad"],
                           p["divisor_override"])
        elif op == "adaptive_avg_pool2d":
            v = adaptive_avg_pool2d(ins[0], p["output_size"])
        elif op == "channel_affine":
            shape = (-1,) + (1,) * (ins[0].ndim - 1)
            v = (ins[0] * p["scale"].reshape(shape)).astype(np.float32) + p["shift"].reshape(shape)
        elif op == "activation":
            v = row_function(ins[0], p["name"], alpha=p.get("alpha"))
        elif op == "softmax":
            moved = np.moveaxis(ins[0], p["dim"], -1)
            v = np.moveaxis(row_function(moved, "softmax"), -1, p["dim"])
        elif op == "log_softmax":
            v = np.moveaxis(log_softmax(np.moveaxis(ins[0], p["dim"], -1)), -1, p["dim"])
        elif op == "layer_norm":
            v = row_function(ins[0], "layer_norm", p["weight"], p["bias"], p["eps"])
        elif op == "binary":
            with np.errstate(all="ignore"):
                v = BINARY[p["op"]](ins[0], ins[1], dtype=np.float32)
        elif op == "attention":
            v = attention(*ins, p["scale"], p["causal"], order)
        elif op == "matmul":
            v = matmul(*ins, order)
        elif op == "embedding":
            v = p["table"][ins[0].astype(np.int64)]
        elif op == "reduce":
            moved = np.moveaxis(ins[0], p["dim"], 0)
            total = moved[0].copy()
            for part in moved[1:]:
                total = (total + part).astype(np.float32)
            v = (total / np.float32(len(moved))).astype(np.float32) if p["mean"] else total
            v = v.reshape(node.shape)
        elif op == "reshape":
            v = ins[0].reshape(p["shape"])
        elif op == "concat":
            v = np.concatenate(ins, axis=p["dim"])
        elif op == "slice":
            v = np.take(ins[0], range(p["start"], p["stop"], p["step"]), axis=p["dim"])
        elif op == "permute":
            v = np.transpose(ins[0], p["perm"])
        else:  # pragma: no cover - a new operation needs its reference here
            raise AssertionError(f"no reference for {op}")
        values.append(np.asarray(v, np.float32))
    return values[model.output]


def run(model, xs, order="seq"):
    return np.stack([run_sample(model, x, order) for x in xs])
