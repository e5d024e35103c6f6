"""Every order and precision, bit for bit, against the exact-rational reference in tests/reference.py."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import batchcore as bc
from reference import add, fma, mul, reference_dot, round_to, to_fixed

ORDERS = ["seq", "seq-nofma", "chunk:1", "chunk:7", "chunk:32", "chunk:5000", "splitk:1", "splitk:3",
          "splitk:4", "lanes:1", "lanes:2", "lanes:16", "lanes:64", "pairwise", "kahan", "dot2", "f64", "exact"]
PRECISIONS = ["fp32", "tf32", "bf16", "fp16"]


def adversarial_vectors(K: int, seed: int = 0):
    """(name, a, b, c) cases that stress the orders: cancellation, huge exponent range, subnormals."""
    rng = np.random.default_rng(seed + K)
    f = np.float32
    normal = (rng.standard_normal(K).astype(f), rng.standard_normal(K).astype(f), f(0.25))
    big = rng.uniform(1e6, 1e7, K).astype(f) * np.where(np.arange(K) % 2 == 0, 1, -1).astype(f)
    small = rng.uniform(-1e-3, 1e-3, K).astype(f)
    cancellation = ((big + small).astype(f), np.ones(K, f), f(-3.5))
    exps = rng.integers(-100, 50, K)
    huge_range = ((rng.choice([-1.0, 1.0], K) * np.ldexp(1.0, exps)).astype(f),
                  rng.uniform(0.5, 2.0, K).astype(f), f(1e-30))
    subnormal = ((rng.integers(1, 1 << 20, K) * 2.0**-149 * rng.choice([-1, 1], K)).astype(f),
                 rng.uniform(0.25, 4.0, K).astype(f), f(0.0))
    tiny_products = (np.full(K, 2.0**-70, f) * rng.uniform(1, 2, K).astype(f),
                     (rng.uniform(-1, 1, K) * 2.0**-70).astype(f), f(2.0**-140))
    ill = rng.standard_normal(K).astype(f) * np.ldexp(1.0, rng.integers(-20, 20, K)).astype(f)
    ill_conditioned = (np.concatenate([ill, -ill])[:K].astype(f), np.ones(K, f), f(1.0))
    return [("normal", *normal), ("cancellation", *cancellation), ("huge_range", *huge_range),
            ("subnormal", *subnormal), ("tiny_products", *tiny_products), ("ill_conditioned", *ill_conditioned)]


def same_bits(x, y) -> bool:
    x, y = np.float32(x), np.float32(y)
    if np.isnan(x) or np.isnan(y):
        return bool(np.isnan(x) and np.isnan(y))
    return x.view(np.uint32) == y.view(np.uint32)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("K", [1, 2, 31, 32, 33, 1000])
def test_dot_matches_rational_reference(order, K):
    precisions = PRECISIONS if K <= 33 else ["fp32", "bf16"]
    for name, a, b, c in adversarial_vectors(K):
        for p in precisions:
            got = bc.orders.dot(a, b, c, order=order, precision=p)
            want = reference_dot(a, b, c, order, p)
            assert same_bits(got, want), f"{order} {p} K={K} {name}: got {got!r}, want {np.float32(want)!r}"


def test_orders_differ_where_they_should():
    # A planted case where the orders must disagree: otherwise the comparison above proves little.
    a = np.array([1e8, 1.0, -1e8, 1.0] * 8, np.float32)
    b = np.ones(32, np.float32)
    results = {o: bc.orders.dot(a, b, 0.0, o) for o in ["seq", "pairwise", "lanes:2", "exact"]}
    assert results["exact"] == 16.0
    assert results["seq"] == 1.0  # 1e8 + 1 rounds back to 1e8: only the last +1 survives
    assert results["lanes:2"] == 16.0  # the +1s and the +-1e8 fall in different lanes


def test_exact_is_correctly_rounded_at_a_tie():
    # 1 + 2^-24 is exactly halfway between 1 and the next float32: ties to even gives 1.0;
    # one more tiny term breaks the tie upwards.
    a = np.array([1.0, 2.0**-24], np.float32)
    b = np.ones(2, np.float32)
    assert bc.orders.dot(a, b, 0.0, "exact") == 1.0
    assert bc.orders.dot(a, b, 2.0**-100, "exact") == np.float32(1.0 + 2.0**-23)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_precision_rounding_matches_reference(precision):
    rng = np.random.default_rng(3)
    x = np.concatenate([
        rng.standard_normal(2000).astype(np.float32),
        (rng.integers(1, 1 << 23, 500) * 2.0**-149).astype(np.float32),      # float32 subnormals
        (rng.uniform(-1, 1, 500) * 2.0**-14).astype(np.float32),             # fp16 subnormal range
        np.array([65504, 65519.99, 65520, -65520, 1e38, 3.4e38, 2.0**-24, 2.0**-25, 3 * 2.0**-26], np.float32),
        # exact ties for every format: 1 + half a quantum
        np.array([1 + 2.0**-k for k in (8, 9, 11, 12, 17)], np.float32),
    ])
    got = bc.orders.round_to(x, precision)
    want = np.array([round_to(float(v), precision) for v in x], dtype=np.float64).astype(np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_fp16_overflows_to_inf_and_bf16_keeps_range():
    x = np.array([65519.0, 65520.0, 1e5, 1e38], np.float32)
    assert list(bc.orders.round_to(x, "fp16")) == [65504.0, math.inf, math.inf, math.inf]
    assert np.isfinite(bc.orders.round_to(x, "bf16")).all()


def test_reference_helpers_agree_with_numpy_single_operations():
    # The reference's add/mul must equal IEEE float32 single operations (numpy) on finite values.
    rng = np.random.default_rng(5)
    a = (rng.standard_normal(300) * np.ldexp(1.0, rng.integers(-140, 60, 300))).astype(np.float32)
    b = (rng.standard_normal(300) * np.ldexp(1.0, rng.integers(-20, 20, 300))).astype(np.float32)
    for x, y in zip(a, b, strict=False):
        assert np.float32(add(float(x), float(y))) == x + y
        assert np.float32(mul(float(x), float(y))) == x * y
    # fma rounds once: (1 + 2^-12)^2 - 1 keeps the 2^-24 term that a*b rounding would lose.
    e = 2.0**-12
    assert fma(1 + e, 1 + e, -1.0) == 2 * e + e * e
    assert to_fixed(2.0**-149) == 2 ** (300 - 149)


def test_names_lists_the_grammar():
    assert bc.orders.names() == ["seq", "seq-nofma", "chunk:C", "splitk:S", "lanes:W", "pairwise", "kahan",
                                 "dot2", "f64", "exact"]


@pytest.mark.parametrize("bad", ["splitk:0", "lanes:3", "chunk:-1", "nonsense", "chunk", "chunk:", "seq:2",
                                 "lanes:2048", "chunk:1.5", " seq", "SEQ", "splitk:+4", ""])
def test_bad_order_strings_raise_order_error(bad):
    with pytest.raises(bc.OrderError):
        bc.orders.parse(bad)
    with pytest.raises(bc.OrderError):
        bc.orders.dot(np.ones(3, np.float32), np.ones(3, np.float32), order=bad)


valid_orders = st.one_of(
    st.sampled_from(["seq", "seq-nofma", "pairwise", "kahan", "dot2", "f64", "exact"]),
    st.integers(1, 10**9).map(lambda c: f"chunk:{c}"),
    st.integers(1, 10**9).map(lambda s: f"splitk:{s}"),
    st.integers(0, 10).map(lambda e: f"lanes:{2**e}"),
)


@given(valid_orders)
def test_valid_orders_parse_to_themselves(order):
    assert bc.orders.parse(order) == order


@given(st.text(max_size=20))
@settings(max_examples=300)
def test_any_string_parses_or_raises_order_error(text):
    try:
        canonical = bc.orders.parse(text)
    except bc.OrderError:
        return
    assert canonical == text  # accepted strings are already canonical


@pytest.mark.parametrize("bad, exc", [
    (dict(a=np.ones(3, np.float64), b=np.ones(3, np.float32)), bc.DTypeError),
    (dict(a=np.ones(3, np.float32), b=np.ones(4, np.float32)), bc.ShapeError),
    (dict(a=np.ones((3, 1), np.float32), b=np.ones(3, np.float32)), bc.ShapeError),
    (dict(a=np.ones(6, np.float32)[::2], b=np.ones(3, np.float32)), bc.DTypeError),
    (dict(a=np.zeros(0, np.float32), b=np.zeros(0, np.float32)), bc.ShapeError),
    (dict(a=np.array([1, np.nan, 2], np.float32), b=np.ones(3, np.float32)), bc.NonFiniteError),
    (dict(a=np.array([1, np.inf, 2], np.float32), b=np.ones(3, np.float32)), bc.NonFiniteError),
    (dict(a=np.ones(3, np.float32), b=np.ones(3, np.float32), precision="fp8"), bc.OrderError),
])
def test_dot_bad_input(bad, exc):
    with pytest.raises(exc):
        bc.orders.dot(**bad)


# -- the typed order and run options: parsed once, by the core --------------------------------------


@pytest.mark.parametrize("text, kind, param", [("seq", "seq", 0), ("seq-nofma", "seq-nofma", 0), ("chunk:64", "chunk", 64),
                                               ("splitk:4", "splitk", 4), ("lanes:16", "lanes", 16),
                                               ("exact", "exact", 0)])
def test_an_order_is_parsed_once_into_a_value(text, kind, param):
    order = bc.orders.Order(text)
    assert (order.kind, order.param, str(order)) == (kind, param, text)
    assert order == bc.orders.Order(text) and hash(order) == hash(bc.orders.Order(text))
    assert order != bc.orders.Order("chunk:65") and order != text  # an order is not its spelling
    assert eval(repr(order), {"Order": bc.orders.Order}) == order
    assert bc.orders.as_order(order) is order  # a parsed order is never parsed again


def test_run_options_hold_every_setting_parsed_and_resolve_the_policy():
    opts = bc.orders.run_options("splitk:4", "bf16", "library-like", threads=3, simd="scalar")
    assert (str(opts.order), opts.precision, opts.policy, opts.threads, opts.simd) == \
        ("splitk:4", "bf16", "library-like", 3, "scalar")
    # The documented boundaries of the planted variance (docs/orders.md): lanes:16, seq, splitk:4.
    want = {1: "lanes:16", 2: "seq", 127: "seq", 128: "splitk:4", 10**6: "splitk:4"}
    assert {M: str(opts.resolve(M)) for M in want} == want
    fixed = bc.orders.run_options("chunk:7")
    assert all(str(fixed.resolve(M)) == "chunk:7" for M in (1, 2, 128, 5000))
    assert fixed.threads == bc._core.default_threads() and fixed.simd == bc._core.simd_level()
    with pytest.raises(AttributeError):
        opts.threads = 1  # immutable: a backend's options cannot drift from what was checked
    with pytest.raises(bc.ShapeError):
        opts.resolve(0)


def test_a_backend_hands_the_core_the_options_it_parsed_when_made():
    backend = bc.native(order="chunk:32", precision="tf32", threads=1)
    assert isinstance(backend.options, bc.orders.RunOptions)
    assert (backend.order, backend.precision, backend.threads) == ("chunk:32", "tf32", 1)
    model = bc.mlp([40, 6], seed=2)
    x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    W, b = model.layers[0].params["weight"], model.layers[0].params["bias"]
    want = np.array([[bc.orders.dot(x[i], W[j], b[j], "chunk:32", "tf32") for j in range(6)] for i in range(3)])
    assert np.array_equal(backend.run(model, x).view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("settings, exc", [
    (dict(order="lanes:3"), bc.OrderError), (dict(order=None), bc.OrderError), (dict(order=7), bc.OrderError),
    (dict(precision="fp64"), bc.OrderError), (dict(precision=None), bc.OrderError),
    (dict(policy="fastest"), bc.OrderError), (dict(policy=""), bc.OrderError), (dict(policy=3), bc.OrderError),
    (dict(threads=0), bc.ArgumentError), (dict(threads=1025), bc.ArgumentError), (dict(threads=2.0), bc.ArgumentError),
    (dict(simd="neon"), bc.DeviceUnavailableError), (dict(simd=None), bc.DeviceUnavailableError),
])
def test_a_bad_setting_raises_the_same_class_at_every_entry(settings, exc):
    """bc.native(), the options themselves and the core's own constructor agree on each bad value."""
    with pytest.raises(exc):
        bc.native(**settings)
    with pytest.raises(exc):
        bc.orders.run_options(**settings)
    core_args = dict(order=bc.orders.Order("seq"), precision="fp32", policy="fixed", threads=None, simd="auto")
    core_args.update(settings)
    typed = isinstance(core_args["order"], bc.orders.Order) and isinstance(core_args["threads"], (int, type(None))) \
        and all(isinstance(core_args[k], str) for k in ("precision", "policy", "simd"))
    if typed:  # the core's own constructor (what the bindings accept at all) refuses the value the same way
        with pytest.raises(exc):
            bc._core.RunOptions(**core_args)
