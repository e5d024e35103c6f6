"""Comparing float32 (and float16, bfloat16) outputs bit by bit: ULP distance, bitwise agreement, fingerprints, invariance
classes, argmax changes, accuracy, and the position / neighbour / run-to-run checks.

Definitions: docs/metrics.md. Everything is vectorised over elements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DTypeError, ShapeError

# The formats compared bit by bit: numpy dtype -> (signed integer of its width, mask of all but the sign).
_SIGNED = {np.dtype(np.float32): (np.int32, 0x7FFFFFFF), np.dtype(np.float16): (np.int16, 0x7FFF)}
_UNSIGNED = {np.dtype(np.float32): np.uint32, np.dtype(np.float16): np.uint16}
# bfloat16 has no numpy dtype: its values travel as float32 (exactly: the low 16 bits zero), and its ULP
# is 2^16 float32 ULPs.
BF16_ULP_IN_FP32 = 1 << 16


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype or a.dtype not in _SIGNED:
        raise DTypeError(f"ULP comparisons are defined for two float32 or two float16 arrays, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ShapeError(f"shapes differ: {a.shape} and {b.shape}")
    return a, b


def ordered_int(x: ArrayLike) -> np.ndarray:
    """Map float32 (or float16) bit patterns to integers whose order is the floats' order (negatives
    reflected), so that adjacent floats differ by 1 and +0 and -0 both map to 0. Returns int64. Anything
    but a float16 array is taken as float32."""
    x = np.asarray(x)
    if x.dtype != np.float16:
        x = x.astype(np.float32, copy=False)
    signed, magnitude = _SIGNED[x.dtype]
    bits = x.view(signed).astype(np.int64)
    return np.where(bits < 0, -(bits & magnitude), bits)


def ulp_distance(a: ArrayLike, b: ArrayLike, fmt: str | None = None) -> np.ndarray:
    """Element-wise ULP distance of two float32 (or two float16) arrays, as float64 (exact: distances are
    below 2^33). ``fmt="bf16"``: float32 arrays holding bfloat16 values, the distance in bfloat16 ULPs.

    +0 and -0 are 0 apart; NaN vs NaN is 0; NaN vs a number is NaN, never a number (count those with
    :func:`nan_mismatch`).
    """
    a, b = _pair(a, b)
    d = np.abs(ordered_int(a) - ordered_int(b)).astype(np.float64)
    if fmt == "bf16":
        if a.dtype != np.float32 or (a.view(np.uint32) & 0xFFFF).any() or (b.view(np.uint32) & 0xFFFF).any():
            raise DTypeError("bf16 ULPs are taken of float32 arrays holding bfloat16 values (low 16 bits zero)")
        d /= BF16_ULP_IN_FP32
    na, nb = np.isnan(a), np.isnan(b)
    d[na & nb] = 0.0
    d[na ^ nb] = np.nan
    return d


def nan_mismatch(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """True where exactly one of the two is NaN."""
    a, b = _pair(a, b)
    return np.isnan(a) ^ np.isnan(b)


def max_ulp(a: ArrayLike, b: ArrayLike, fmt: str | None = None) -> int:
    """Largest ULP distance over elements that are not a NaN-vs-number mismatch (0 for none); ``fmt``
    as for :func:`ulp_distance`."""
    d = ulp_distance(a, b, fmt)
    d = d[~np.isnan(d)]
    return int(d.max()) if d.size else 0


def bitwise_equal(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """True where the two float32 (or float16) elements have identical bits."""
    a, b = _pair(a, b)
    return a.view(_UNSIGNED[a.dtype]) == b.view(_UNSIGNED[a.dtype])


def bitwise_equal_frac(a: ArrayLike, b: ArrayLike) -> float:
    """Fraction of elements with identical bits."""
    return float(bitwise_equal(a, b).mean())


def fingerprint(y: ArrayLike) -> str:
    """A short hash of all bits (and the shape) of a float32 array: equal fingerprints, equal outputs.
    (float16 and integer arrays too: their dtype is hashed with them, so unequal dtypes never agree.)"""
    y = np.ascontiguousarray(y)
    if y.dtype != np.float32 and y.dtype not in _SIGNED and not np.issubdtype(y.dtype, np.integer) \
            and y.dtype != np.bool_:
        raise DTypeError(f"fingerprints are taken of float32, float16, integer or boolean arrays, got {y.dtype}")
    h = hashlib.sha256(repr(y.shape).encode())
    if y.dtype != np.float32:
        h.update(y.dtype.str.encode())  # float32 fingerprints stay what they were
    h.update(y.astype(y.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()[:16]


def invariance_classes(fingerprints: dict[Any, str]) -> list[list[Any]]:
    """Group keys (batch sizes) whose fingerprints agree, classes in order of their first key.
    One class means batch invariant."""
    groups: dict[str, list] = {}
    for key, fp in fingerprints.items():
        groups.setdefault(fp, []).append(key)
    return list(groups.values())


def argmax_changed(a: ArrayLike, b: ArrayLike) -> int:
    """Predictions (argmax over the last dimension) that differ between two outputs of shape (rows, ...,
    classes): rows of a (rows, classes) output, positions of a (rows, positions, classes) one."""
    a, b = _pair(a, b)
    return int((a.argmax(axis=-1) != b.argmax(axis=-1)).sum())


def accuracy(y: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of predictions (argmax over the last dimension of ``y``, shape (rows, ..., classes)) equal
    to their label (``labels``: shape (rows, ...))."""
    out, want = np.asarray(y), np.asarray(labels)
    if want.shape != out.shape[:-1]:
        raise ShapeError(f"labels must have shape {out.shape[:-1]}, got {want.shape}")
    return float((out.argmax(axis=-1) == want).mean())


def accuracy_interval(correct: int, rows: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``rows`` (as fractions): it stays
    inside [0, 1] and keeps its coverage near 0 and 1, where the normal approximation does not."""
    from scipy.stats import binomtest

    if rows <= 0 or not 0 <= correct <= rows:
        raise ShapeError(f"an accuracy needs 0 <= correct <= rows and rows > 0, got {correct} of {rows}")
    ci = binomtest(int(correct), int(rows)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def relative_error(y: ArrayLike, y_exact: ArrayLike) -> np.ndarray:
    """Per row: ||y - y_exact||_2 / ||y_exact||_2, in float64 (0 where both are 0). Elements with the same
    bits contribute no error (two equal infinities are not inf - inf = NaN apart); a row whose exact norm
    is infinite while y differs is infinitely wrong; NaN only where y or y_exact holds a NaN that differs."""
    y, y_exact = _pair(y, y_exact)
    same = y.view(np.uint32) == y_exact.view(np.uint32)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.where(same, 0.0, y.astype(np.float64) - y_exact.astype(np.float64))
        diff = np.linalg.norm(d, axis=-1)
        ref = np.linalg.norm(y_exact.astype(np.float64), axis=-1)
    diff = np.where(np.isinf(ref) & (diff > 0), np.inf, diff)
    ref = np.where(np.isinf(ref) & np.isinf(diff), 1.0, ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ref > 0, diff / np.where(ref > 0, ref, 1), np.where(diff > 0, np.inf, 0.0))


# -- checks that run a forward pass -----------------------------------------------------------------

Run = Callable[[np.ndarray], np.ndarray]


def position_invariance(run: Run, row: np.ndarray, batch: np.ndarray) -> dict:
    """Run ``row`` at positions 0, middle and last of ``batch`` (replacing that row) and alone.

    Returns ``{"alone": fp, 0: equal_to_alone, mid: ..., last: ...}`` where each position maps to
    whether that output row has the same bits as the row computed alone.
    """
    alone = run(row[None, :])[0]
    out = {}
    for pos in sorted({0, len(batch) // 2, len(batch) - 1}):
        x = batch.copy()
        x[pos] = row
        out[pos] = bool(bitwise_equal(run(x)[pos], alone).all())
    return out


def neighbour_invariance(run: Run, row: np.ndarray, neighbours: list[np.ndarray]) -> int:
    """Run ``row`` at position 0 next to each neighbour set; return the number of distinct output bit
    patterns of that row (1 means its bits do not depend on its neighbours)."""
    fps = {fingerprint(run(np.concatenate([row[None, :], nb]))[0]) for nb in neighbours}
    return len(fps)


def run_to_run(run: Run, x: np.ndarray, repeats: int = 5) -> int:
    """Number of distinct output fingerprints over ``repeats`` identical runs (1 means deterministic)."""
    return len({fingerprint(run(x)) for _ in range(repeats)})
