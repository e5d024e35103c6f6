"""A sweep point's comparison figures recomputed from a framework's own plain loop, for the tests of the
backends that run models as they are (ONNX Runtime, JAX), and how close two orders' outputs must be:
nothing here calls batchcore."""

import numpy as np


def max_ulp(a, b):
    """The largest ULP distance between two float32 arrays (their bit patterns as ranks on one line)."""
    def rank(t):
        i = np.ascontiguousarray(t, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return int(np.abs(rank(a) - rank(b)).max())


def check_point(p, got, b1, labels=None):
    """``p``'s bits, ULPs, flips and accuracy against ``got`` (the plain loop at p's batch size) and ``b1``
    (at B=1), both float32 (rows, classes)."""
    assert p["bitwise_equal_frac"] == float((got.view(np.int32) == b1.view(np.int32)).mean())
    assert p["max_ulp_vs_b1"] == max_ulp(got, b1)
    assert p["argmax_changed"] == int((got.argmax(1) != b1.argmax(1)).sum())
    if labels is not None:
        assert p["accuracy"] == float((got.argmax(1) == labels).mean())


def assert_as_close_as_orders_allow(got, want, exact):
    """``got`` (the native core) and ``want`` (a framework) differ by no more than the sum of their distances
    to ``exact`` (the exactly rounded outputs) plus 1e-7, and that sum is small: two orders of one model."""
    got, want, exact = (np.asarray(a, np.float64).reshape(np.shape(want)) for a in (got, want, exact))
    spread = np.abs(want - exact).max() + np.abs(got - exact).max()
    assert np.abs(got - want).max() <= spread + 1e-7 and spread < 1e-4, (np.abs(got - want).max(), spread)
