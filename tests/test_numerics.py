"""ULP distance, bitwise comparison, fingerprints and classes: properties (hypothesis) and hand-made cases."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import batchcore as bc
from batchcore.results import numerics as nm

floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


def f(x):
    return np.array([x], dtype=np.float32)


@given(floats32, floats32)
def test_ulp_distance_is_symmetric(a, b):
    d1, d2 = nm.ulp_distance(f(a), f(b))[0], nm.ulp_distance(f(b), f(a))[0]
    assert (np.isnan(d1) and np.isnan(d2)) or d1 == d2


@given(floats32, floats32)
def test_ulp_distance_is_zero_iff_same_value(a, b):
    d = nm.ulp_distance(f(a), f(b))[0]
    if np.isnan(a) or np.isnan(b):
        return
    assert (d == 0) == (np.float32(a) == np.float32(b))  # +0 == -0 numerically


@given(floats32)
def test_nan_rules(a):
    nan = f(np.nan)
    d = nm.ulp_distance(nan, f(a))[0]
    if np.isnan(a):
        assert d == 0 and not nm.nan_mismatch(nan, f(a))[0]
    else:
        assert np.isnan(d) and nm.nan_mismatch(nan, f(a))[0]


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_next_float_is_one_ulp_away(a):
    x = np.float32(a)
    with np.errstate(over="ignore"):  # the largest float's successor is inf: skipped below
        up = np.nextafter(x, np.float32(np.inf), dtype=np.float32)
    if np.isfinite(up):
        assert nm.ulp_distance(f(x), f(up))[0] == 1


def test_signed_zeros_and_known_distances():
    assert nm.ulp_distance(f(0.0), f(-0.0))[0] == 0
    tiny = np.float32(2.0**-149)
    assert nm.ulp_distance(f(tiny), f(-tiny))[0] == 2  # across zero: -tiny, 0, +tiny
    assert nm.ulp_distance(f(1.0), f(2.0))[0] == 2**23
    assert nm.max_ulp(np.array([1, np.nan], np.float32), np.array([1, 2], np.float32)) == 0


def test_bitwise_equal_sees_signed_zero_and_fingerprint_sees_one_bit():
    a = np.zeros((2, 3), np.float32)
    b = a.copy()
    b[1, 2] = -0.0
    assert nm.bitwise_equal_frac(a, b) == 5 / 6
    assert nm.fingerprint(a) != nm.fingerprint(b)
    assert nm.fingerprint(a) == nm.fingerprint(a.copy())


def test_classes_group_by_fingerprint_in_order():
    assert nm.invariance_classes({1: "x", 2: "y", 3: "y", 8: "x", 64: "z"}) == [[1, 8], [2, 3], [64]]


def test_argmax_accuracy_relative_error():
    a = np.array([[1, 2, 3], [3, 2, 1]], np.float32)
    b = np.array([[1, 2, 3], [1, 2, 3]], np.float32)
    assert nm.argmax_changed(a, b) == 1
    assert nm.accuracy(a, np.array([2, 2])) == 0.5
    err = nm.relative_error(b, a)
    assert err[0] == 0 and np.isclose(err[1], np.sqrt(8) / np.sqrt(14))


def test_position_neighbour_and_run_to_run_checks():
    model = bc.mlp([40, 30, 5], seed=1)
    x = np.random.default_rng(0).standard_normal((9, 40)).astype(np.float32)
    native = bc.native()
    run = lambda v: native.run(model, v)  # noqa: E731
    assert all(nm.position_invariance(run, x[0], x[1:]).values())
    assert nm.neighbour_invariance(run, x[0], [x[1:3], x[3:9], x[5:6]]) == 1
    assert nm.run_to_run(run, x, repeats=4) == 1
    # A planted dependence on neighbours must be seen: the output depends on the batch's mean.
    leaky = lambda v: (v - v.mean(axis=0)).astype(np.float32)  # noqa: E731
    assert nm.neighbour_invariance(leaky, x[0], [x[1:3], x[3:9]]) == 2
    assert not all(nm.position_invariance(leaky, x[0], x[1:]).values())


@pytest.mark.parametrize("y, exact, err", [
    ([[np.inf, 1, 2]], [[np.inf, 1, 2]], 0.0),       # overflowed to the same infinity: no error, not NaN
    ([[1, 1, 2]], [[np.inf, 1, 2]], np.inf),         # finite where the exact value overflowed
    ([[1, 1, 2]], [[1, 1, 3]], 1 / np.sqrt(11)),     # ||(0, 0, -1)|| / ||(1, 1, 3)||
    ([[0, 0]], [[0, 0]], 0.0),
    ([[1e-3, 0]], [[0, 0]], np.inf),
])
def test_relative_error_handles_overflow_without_nan(y, exact, err):
    from batchcore.results.numerics import relative_error

    got = relative_error(np.array(y, np.float32), np.array(exact, np.float32))
    assert got[0] == pytest.approx(err) if np.isfinite(err) else got[0] == err
