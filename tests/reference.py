"""Slow, independent references for the tests: exact rational arithmetic on Python integers.

Every finite float32 (and every product of two) is an integer multiple of 2^-298, so an exact value is
held as the integer X = value * 2^SHIFT. Each operation of an order is computed exactly and then rounded
once (to nearest, ties to even) by `round_fixed`, written from the IEEE 754 definition, sharing no code
with batchcore. Operations with an Inf or NaN operand follow IEEE special-value rules via Python floats.
"""

from __future__ import annotations

import math

import numpy as np

SHIFT = 300

# (precision p in bits incl. the leading one, smallest normal exponent, largest exponent)
FORMATS = {
    "fp32": (24, -126, 127),
    "tf32": (11, -126, 127),
    "bf16": (8, -126, 127),
    "fp16": (11, -14, 15),
}


def to_fixed(x: float) -> int:
    n, d = float(x).as_integer_ratio()
    return n * (1 << SHIFT) // d  # exact: d is a power of two not above 2^298 for our values


def round_fixed(X: int, fmt: str = "fp32") -> float:
    """Round the exact value X / 2^SHIFT to the format, ties to even; overflow gives +-inf; zero is +0."""
    p, emin, emax = FORMATS[fmt]
    if X == 0:
        return 0.0
    sign = -1.0 if X < 0 else 1.0
    A = abs(X)
    e = max(A.bit_length() - 1 - SHIFT, emin)  # exponent of the leading bit, clamped at the subnormal range
    q = e - p + 1 + SHIFT  # the quantum is 2^(e - p + 1), i.e. 2^q in fixed-point units
    if q <= 0:
        n = A << -q
    else:
        n, r = divmod(A, 1 << q)
        half = 1 << (q - 1)
        if r > half or (r == half and n % 2 == 1):
            n += 1
    if n * 2.0 ** (e - p + 1) >= 2.0 ** (emax + 1):
        return sign * math.inf
    return sign * math.ldexp(n, e - p + 1)


def round_to(x: float, fmt: str) -> float:
    return x if not math.isfinite(x) else round_fixed(to_fixed(x), fmt)


def _finite(*xs) -> bool:
    return all(math.isfinite(x) for x in xs)


def f32(x: float) -> float:
    """Round a Python float (float64) to float32 exactly once."""
    return round_fixed(to_fixed(x)) if math.isfinite(x) else x


def add(a: float, b: float) -> float:
    return round_fixed(to_fixed(a) + to_fixed(b)) if _finite(a, b) else f32(a + b)


def sub(a: float, b: float) -> float:
    return add(a, -b)


def mul(a: float, b: float) -> float:
    return round_fixed((to_fixed(a) * to_fixed(b)) >> SHIFT) if _finite(a, b) else f32(a * b)


def fma(a: float, b: float, c: float) -> float:
    if _finite(a, b, c):
        return round_fixed(((to_fixed(a) * to_fixed(b)) >> SHIFT) + to_fixed(c))
    return f32(a * b + c)


# -- the orders, operation by operation as docs/orders.md defines them -------------------------------------


def _seq(a, b, lo, hi):
    s = 0.0
    for k in range(lo, hi):
        s = fma(a[k], b[k], s)
    return s


def _chunks(a, b, C):
    K = len(a)
    total = None
    for k0 in range(0, K, C):
        part = _seq(a, b, k0, min(k0 + C, K))
        total = part if total is None else add(total, part)
    return total


def _pairwise(a, b, lo, hi):
    if hi - lo == 1:
        return mul(a[lo], b[lo])
    m = lo + (hi - lo) // 2
    return add(_pairwise(a, b, lo, m), _pairwise(a, b, m, hi))


def reference_dot(a, b, c: float, order: str, precision: str = "fp32") -> float:
    """y = dot(a, b) + c in `order` after rounding every a_k, b_k to `precision`; returns a Python float
    holding a float32 value."""
    a = [round_to(float(v), precision) for v in a]
    b = [round_to(float(v), precision) for v in b]
    c = float(c)
    K = len(a)
    name, _, arg = order.partition(":")
    if name == "seq":
        s = _seq(a, b, 0, K)
    elif name == "seq-nofma":
        s = 0.0
        for k in range(K):
            s = add(s, mul(a[k], b[k]))
    elif name == "chunk":
        s = _chunks(a, b, int(arg))
    elif name == "splitk":
        s = _chunks(a, b, -(-K // int(arg)))
    elif name == "lanes":
        W = int(arg)
        lanes = [0.0] * W
        for k in range(K):
            lanes[k % W] = fma(a[k], b[k], lanes[k % W])
        h = W // 2
        while h >= 1:
            for l in range(h):
                lanes[l] = add(lanes[l], lanes[l + h])
            h //= 2
        s = lanes[0]
    elif name == "pairwise":
        s = _pairwise(a, b, 0, K)
    elif name == "kahan":
        s = comp = 0.0
        for k in range(K):
            p = mul(a[k], b[k])
            t = add(s, p)
            if abs(s) >= abs(p):
                comp = add(comp, add(sub(s, t), p))
            else:
                comp = add(comp, add(sub(p, t), s))
            s = t
        s = add(s, comp)
    elif name == "dot2":
        p = mul(a[0], b[0])
        s = fma(a[0], b[0], -p)
        for k in range(1, K):
            h = mul(a[k], b[k])
            r = fma(a[k], b[k], -h)
            total = add(p, h)
            z = sub(total, p)
            q = add(sub(p, sub(total, z)), sub(h, z))
            p = total
            s = add(s, add(q, r))
        s = add(p, s)
    elif name == "f64":
        acc = 0.0  # Python floats are float64 with one rounding per operation
        for k in range(K):
            acc = acc + a[k] * b[k]
        return f32(acc + c)
    elif name == "exact":
        if not _finite(*a, *b):
            with np.errstate(invalid="ignore"):  # Inf * 0 is NaN, as IEEE says
                return f32(float(np.dot(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))) + c)
        X = sum((to_fixed(x) * to_fixed(y)) >> SHIFT for x, y in zip(a, b, strict=False)) + to_fixed(c)
        return round_fixed(X)
    else:
        raise ValueError(order)
    return add(s, c)
