"""Named accumulation orders: one dot product in a chosen order, and the names that exist.

The normative definitions are in docs/orders.md; the C++ core implements them.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from .errors import DTypeError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def names() -> list[str]:
    """The order grammar: ``seq``, ``seq-nofma``, ``chunk:C``, ``splitk:S``, ``lanes:W``, ..., ``exact``."""
    return list(_core.order_grammar())


def parse(order: str) -> str:
    """Canonical spelling of ``order``; raises :class:`OrderError` naming what is wrong with it."""
    if not isinstance(order, str):
        raise _core.OrderError(f"an order is a string such as 'seq' or 'chunk:64', got {order!r}")
    return _core.parse_order(order)


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of fp32, tf32, bf16, fp16; else raise :class:`OrderError`."""
    if not isinstance(precision, str):
        raise _core.OrderError(f"a precision is a string such as 'bf16', got {precision!r}")
    return _core.parse_precision(precision)


def dot(a, b, c: float = 0.0, order: str = "seq", precision: str = "fp32") -> np.float32:
    """``dot(a, b) + c`` of two float32 vectors in a named order, inputs first rounded to ``precision``.

    ``a`` and ``b`` must be 1-D, C-contiguous float32 arrays of the same length K >= 1 with finite
    values; nothing is converted silently. Returns a numpy float32.
    """
    for name, v in (("a", a), ("b", b)):
        if not isinstance(v, np.ndarray):
            raise DTypeError(f"{name} must be a numpy float32 array, got {type(v).__name__}")
    if isinstance(c, bool) or not isinstance(c, numbers.Real):
        raise DTypeError(f"c must be a number, got {c!r}")
    order, precision = parse(order), check_precision(precision)
    c32 = np.float32(c)
    if float(c32) != float(c) and np.isfinite(c):
        raise DTypeError(f"c={c!r} is not representable as float32; pass np.float32(c)")
    return np.float32(_core.dot(a, b, float(c32), order, precision))


def round_to(x: np.ndarray, precision: str) -> np.ndarray:
    """Round each element of a 1-D float32 array to ``precision`` (to nearest, ties to even), as float32."""
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"x must be a numpy float32 array, got {type(x).__name__}")
    return _core.round_to(x, check_precision(precision))
