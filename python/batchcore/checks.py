"""Argument checks shared by the public functions: one spelling of each rule and of its error.

Every check accepts what a user would reasonably pass (Python ints and numpy integers, floats where a
number is meant) and raises a batchcore exception that names the argument and what it got; nothing is
converted silently (``2.7``, ``"3"`` and ``True`` are not batch sizes).
"""

from __future__ import annotations

import numbers
from typing import Any

from .errors import ArgumentError, OutOfMemoryError, ShapeError

MAX_THREADS = 1024  # the core's kMaxThreads


def positive_int(value: object, name: str, error: type[Exception] = ArgumentError, maximum: int | None = None) -> int:
    """``value`` as an int when it is an integer (not a bool) in 1..``maximum``; else ``error``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and int(value) > maximum:
        raise error(f"{name} must be at most {maximum}, got {value!r}")
    return int(value)


def shape(value: object, name: str) -> tuple[int, ...]:
    """A shape: a non-empty sequence of positive integers (an integer alone is a 1-D shape); ShapeError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not list(value):
        raise ShapeError(f"{name} must be a non-empty tuple of positive integers, got {value!r}")
    return tuple(positive_int(d, f"every {name} entry", ShapeError) for d in value)


def threads(value: object, name: str = "threads") -> int | None:
    """A thread count (1..1024) or None (all cores)."""
    return None if value is None else positive_int(value, name, maximum=MAX_THREADS)


def flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(f"{name} must be True or False, got {value!r}")
    return value


def seed(value: object, name: str = "seed") -> int:
    """A random seed: a non-negative integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ArgumentError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def available_memory_bytes() -> int | None:
    """Memory the kernel says can be allocated without swapping (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def require_allocatable(nbytes: int, what: str) -> None:
    """OutOfMemoryError naming ``what`` before an allocation of ``nbytes`` that cannot succeed (more than
    the memory available), instead of numpy's MemoryError or the kernel's OOM killer mid-way."""
    avail = available_memory_bytes()
    if avail is not None and nbytes > avail:
        raise OutOfMemoryError(f"{what} needs {nbytes / 2**30:.3g} GiB; {avail / 2**30:.3g} GiB of memory is available")


def labels(value: object, rows: int, classes: int | None = None, per_row: tuple[int, ...] | None = ()) -> Any:
    """Integer class labels, one per prediction: shape ``(rows, *per_row)`` (``per_row`` () : one per row; a
    module whose predictions are per position, e.g. a language model's (rows, positions, vocabulary) logits,
    has a label per position; None: any, checked later). A numpy array or anything ``np.asarray`` takes, a
    torch tensor included; each in ``[0, classes)`` when the number of classes is known: ShapeError otherwise
    (a label outside the output's classes could never be predicted, and would silently lower the accuracy)."""
    import numpy as np

    out = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    shape_ok = out.ndim >= 1 and out.shape[0] == rows if per_row is None else out.shape == (rows, *per_row)
    if not shape_ok or not np.issubdtype(out.dtype, np.integer):
        want = f"({rows}, ...)" if per_row is None else str((rows, *per_row))
        raise ShapeError(f"labels must be integers of shape {want}, got {out.dtype} {out.shape}")
    if classes is not None and out.size and (int(out.min()) < 0 or int(out.max()) >= classes):
        bad = out[(out < 0) | (out >= classes)]
        raise ShapeError(f"labels must be classes 0..{classes - 1} of the model's {classes} outputs; found {int(bad.flat[0])} "
                         f"({bad.size} of {out.size} labels out of range)")
    return out
