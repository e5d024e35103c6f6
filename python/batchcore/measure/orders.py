"""Named accumulation orders: the typed order and run options the core parses once, one dot product in
a chosen order, and the names that exist.

The normative definitions are in docs/orders.md; the C++ core implements them. ``Order`` and
``RunOptions`` are the core's own types: an order string is parsed into an ``Order`` once (when a backend
is made), and every later call hands the parsed object to the core.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _core, checks
from ..errors import DeviceUnavailableError, DTypeError, OrderError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
POLICIES = ("fixed", "library-like")

Order = _core.Order
RunOptions = _core.RunOptions


def names() -> list[str]:
    """The order grammar: ``seq``, ``seq-nofma``, ``chunk:C``, ``splitk:S``, ``lanes:W``, ..., ``exact``."""
    return list(_core.order_grammar())


def as_order(order: str | Order) -> Order:
    """``order`` parsed (an :class:`Order` is returned as it is); OrderError naming what is wrong."""
    if isinstance(order, Order):
        return order
    if not isinstance(order, str):
        raise OrderError(f"an order is a string such as 'seq' or 'chunk:64', got {order!r}")
    return Order(order)


def parse(order: str | Order) -> str:
    """Canonical spelling of ``order``; raises :class:`OrderError` naming what is wrong with it."""
    return str(as_order(order))


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of fp32, tf32, bf16, fp16; else raise :class:`OrderError`."""
    if not isinstance(precision, str):
        raise OrderError(f"a precision is a string such as 'bf16', got {precision!r}")
    return _core.parse_precision(precision)


def run_options(order: str | Order = "seq", precision: str = "fp32", policy: str | None = None,
                threads: int | None = None, simd: str = "auto") -> RunOptions:
    """Every setting of a native run, checked and parsed once: ``policy`` None is ``"fixed"``,
    ``threads`` None all cores, ``simd`` ``"auto"`` the best level. OrderError (order, precision,
    policy), ArgumentError (threads), DeviceUnavailableError (a SIMD level this CPU lacks)."""
    parsed = as_order(order)
    precision = check_precision(precision)
    if policy is not None and not isinstance(policy, str):
        raise OrderError(f"policy must be None or one of {POLICIES}, got {policy!r}")
    count = checks.threads(threads)
    if not isinstance(simd, str):
        raise DeviceUnavailableError(f"simd must be a string such as 'auto' or 'avx2', got {simd!r}")
    return RunOptions(parsed, precision, "fixed" if policy is None else policy, count, simd)


def dot(a: np.ndarray, b: np.ndarray, c: float = 0.0, order: str | Order = "seq", precision: str = "fp32") -> np.float32:
    """``dot(a, b) + c`` of two float32 vectors in a named order, inputs first rounded to ``precision``.

    ``a`` and ``b`` must be 1-D, C-contiguous float32 arrays of the same length K >= 1 with finite
    values; nothing is converted silently. Returns a numpy float32.
    """
    for name, v in (("a", a), ("b", b)):
        if not isinstance(v, np.ndarray):
            raise DTypeError(f"{name} must be a numpy float32 array, got {type(v).__name__}")
    if isinstance(c, bool) or not isinstance(c, numbers.Real):
        raise DTypeError(f"c must be a number, got {c!r}")
    parsed, precision = as_order(order), check_precision(precision)
    c32 = np.float32(c)
    if float(c32) != float(c) and np.isfinite(c):
        raise DTypeError(f"c={c!r} is not representable as float32; pass np.float32(c)")
    return np.float32(_core.dot(a, b, float(c32), parsed, precision))


def round_to(x: np.ndarray, precision: str) -> np.ndarray:
    """Round each element of a 1-D float32 array to ``precision`` (to nearest, ties to even), as float32."""
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"x must be a numpy float32 array, got {type(x).__name__}")
    return _core.round_to(x, check_precision(precision))
