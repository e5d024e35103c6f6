"""One-dimensional convolutions and pools (over samples of shape (channels, length)) read as the core's 2-D
ones over (channels, 1, length): a kernel of height 1 sums exactly the products a 1-D kernel sums, in the
2-D operation's named order (docs/orders.md), so no new order is needed for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Add = Callable[..., int]  # a reader's add(kind, inputs, out_shape, **params) -> graph node


def as_one_row(add: Add, kind: str, x: int, x_shape: tuple[int, ...], out_shape: tuple[int, ...], **params: Any) -> int:
    """``kind`` (conv2d, max_pool2d, avg_pool2d) applied to ``x`` of sample shape (C, L) as (C, 1, L), its
    result (C', 1, L') reshaped to ``out_shape`` (C', L'). ``params`` are the 2-D operation's, with the
    height's stride, padding and dilation already 1, 0 and 1."""
    c, length = x_shape
    oc, ol = out_shape
    rows = add("reshape", (x,), (c, 1, length), shape=[c, 1, length])
    y = add(kind, (rows,), (oc, 1, ol), **params)
    return add("reshape", (y,), (oc, ol), shape=[oc, ol])


def height_one(values: Any, first: int) -> list[int]:
    """A 1-D setting (an int or a 1-element sequence) as the 2-D pair (``first``, value)."""
    v = values[0] if isinstance(values, (list, tuple)) else values
    return [first, int(v)]
