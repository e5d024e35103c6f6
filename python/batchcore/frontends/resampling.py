"""Transposed convolutions and nearest-neighbour upsampling, read by every frontend (torch's
ConvTranspose1d/2d and Upsample/interpolate, ONNX's ConvTranspose and Resize) as operations the core
already has, so that no new order is needed for them (docs/orders.md, "Convolution").

A transposed convolution is the core's convolution over its input dilated by its stride (zeros between
neighbours: +0 terms, as the padding's), padded by d (k - 1) - p on each side and by the output padding
more at the end, its kernel flipped and its two channel axes swapped: each output element one dot over
every tap. Nearest upsampling by whole factors copies each entry (no arithmetic): per spatial dimension,
the value joined with itself along a new last dimension and reshaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Add = Callable[..., int]  # a reader's add(kind, inputs, out_shape, **params) -> graph node


def transposed_conv_params(weight: np.ndarray, stride: Sequence[int], padding: Sequence[int],
                           output_padding: Sequence[int], dilation: Sequence[int], groups: int) -> dict[str, Any]:
    """The core conv2d's parameters of a 2-D transposed convolution whose ``weight`` is torch's and ONNX's
    (in_channels, out_channels / groups, kh, kw). ValueError (the reader refuses with it) when the padding
    exceeds d (k - 1) (a crop, which the core's padding cannot express)."""
    w = np.asarray(weight, np.float32)
    cin, per_group, kh, kw = w.shape
    if cin % groups:
        raise ValueError(f"in_channels {cin} are not divisible by groups {groups}")
    conv = w.reshape(groups, cin // groups, per_group, kh, kw).transpose(0, 2, 1, 3, 4)
    conv = np.ascontiguousarray(conv.reshape(groups * per_group, cin // groups, kh, kw)[:, :, ::-1, ::-1])
    pads = [int(d) * (k - 1) - int(p) for d, k, p in zip(dilation, (kh, kw), padding, strict=True)]
    if min(pads) < 0:
        raise ValueError(f"padding {list(padding)} larger than dilation x (kernel - 1) crops the output, which is not "
                         "supported")
    return {"weight": conv, "stride": [1, 1], "padding": pads, "dilation": [int(d) for d in dilation],
            "groups": int(groups), "input_dilation": [int(s) for s in stride],
            "extra_padding": [int(o) for o in output_padding]}


def nearest_upsample(add: Add, x: int, shape: tuple[int, ...], factors: Sequence[int]) -> int:
    """``x`` (samples of ``shape``: channels, then one or two spatial dimensions) with each spatial entry
    repeated ``factors[i]`` times along dimension i + 1; copies only."""
    spatial = len(shape) - 1
    if len(factors) != spatial or any(int(f) < 1 for f in factors):
        raise ValueError(f"upsampling factors {list(factors)} do not fit samples of shape {shape}")
    current = tuple(shape)
    for d in range(spatial, 0, -1):  # the last spatial dimension first
        f = int(factors[d - 1])
        if f == 1:
            continue
        column = current[:d + 1] + (1,) + current[d + 1:]
        split = add("reshape", (x,), column, shape=list(column))
        joined_shape = current[:d + 1] + (f,) + current[d + 1:]
        joined = add("concat", (split,) * f, joined_shape, dim=d + 1)
        current = current[:d] + (current[d] * f,) + current[d + 1:]
        x = add("reshape", (joined,), current, shape=list(current))
    return x
