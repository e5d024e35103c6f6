"""The native GEMM (packed, vectorised, threaded) equals the native dot product bit for bit, for every
element, order, precision, thread count, instruction set, batch size and row position."""

import numpy as np
import pytest

import batchcore as bc
from batchcore import _core
from batchcore.orders import run_options as opts

ORDERS = ["seq", "seq-nofma", "chunk:7", "splitk:4", "lanes:16", "lanes:1", "lanes:4", "lanes:1024", "pairwise",
          "kahan", "dot2", "f64", "exact"]
SHAPES = [(1, 1, 1), (3, 33, 31), (17, 65, 100), (13, 32, 1000), (2, 97, 33),  # (M, N, K), no tile multiples
          (197, 45, 520),  # crosses 96-row tiles, 12-row groups with a remainder, 256-long K blocks
          (1, 40, 1500),  # one row, K over several K blocks and longer than every lane count but one
          (30, 33, 9000)]  # K so long that tiles shrink to 12 rows: three tiles, the last one short


def linear_model(N, K, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((N, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    m = _core.Model(K)
    m.add_linear(W, b)
    return m, W, b


def dot_reference(x, W, b, order, precision):
    return np.array([[bc.orders.dot(x[i], W[j], b[j], order, precision) for j in range(W.shape[0])]
                     for i in range(x.shape[0])], dtype=np.float32)


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("order", ORDERS)
def test_gemm_equals_dot_for_every_element(M, N, K, order):
    m, W, b = linear_model(N, K)
    x = np.random.default_rng(1).standard_normal((M, K)).astype(np.float32)
    for precision in ["fp32", "bf16"] if K > 100 else ["fp32", "tf32", "bf16", "fp16"]:
        want = dot_reference(x, W, b, order, precision)
        for simd in _core.simd_levels():
            for threads in (1, 2, 3):
                y = m.run(x, opts(order, precision, threads=threads, simd=simd))[0]
                assert np.array_equal(y.view(np.uint32), want.view(np.uint32)), (order, precision, simd, threads)


@pytest.mark.parametrize("order", ["seq", "splitk:4", "lanes:16", "kahan"])
def test_rows_do_not_depend_on_batch_size_or_position(order):
    m, W, b = linear_model(70, 300, seed=4)
    x = np.random.default_rng(2).standard_normal((1000, 300)).astype(np.float32)
    alone = m.run_batched(x[:40], 1, opts(order))
    for B in (2, 3, 17, 40, 1000):
        y = m.run_batched(x, B, opts(order, threads=3))
        assert np.array_equal(y[:40].view(np.uint32), alone.view(np.uint32)), B
    # Same row at first, middle and last position of a batch of strangers.
    for pos in (0, 500, 999):
        batch = x.copy()
        batch[pos] = x[7]
        assert np.array_equal(m.run(batch, opts(order))[0][pos].view(np.uint32), alone[7].view(np.uint32))


def test_library_like_policy_switches_orders_at_documented_boundaries():
    m, W, b = linear_model(20, 64)
    x = np.random.default_rng(3).standard_normal((300, 64)).astype(np.float32)
    cases = [(1, "lanes:16"), (2, "seq"), (127, "seq"), (128, "splitk:4"), (300, "splitk:4")]
    for M, order in cases:
        got = m.run(x[:M], opts(policy="library-like"))[0]
        want = m.run(x[:M], opts(order))[0]
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), M
        assert opts(policy="library-like").resolve(M) == _core.Order(order)
    # ... and the planted orders really give different bits on this data.
    fixed = {o: m.run(x[:2], opts(o))[0] for o in ("lanes:16", "seq", "splitk:4")}
    assert not np.array_equal(fixed["seq"], fixed["lanes:16"]) and not np.array_equal(fixed["seq"], fixed["splitk:4"])


def test_large_k_exceeding_caches_and_wide_n():
    m, W, b = linear_model(33, 20000, seed=9)
    x = np.random.default_rng(5).standard_normal((3, 20000)).astype(np.float32)
    want = dot_reference(x, W, b, "seq", "fp32")
    assert np.array_equal(m.run(x, opts(threads=2))[0].view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("order", ["seq", "seq-nofma", "lanes:16", "pairwise", "kahan", "dot2", "f64"])
@pytest.mark.parametrize("K", [33, 300])
def test_gemm_matches_rational_reference_on_adversarial_data(order, K):
    """The row-blocked kernels (kahan by TwoSum, f64 by fma, additions on the fma units) against the
    exact-rational reference, on the cancellation, exponent-range, subnormal and overflow cases."""
    from reference import reference_dot
    from test_orders import adversarial_vectors, same_bits

    cases = adversarial_vectors(K, seed=5)
    f = np.float32
    overflow = np.resize(np.array([3e38, 3e38, -3e38, 1.0], f), K)  # partial sums overflow, products do not
    x = np.stack([a for _, a, _, _ in cases] + [overflow])
    W = np.stack([b for _, _, b, _ in cases] + [-b for _, _, b, _ in cases] + [np.ones(K, f)])
    bias = np.array([c for *_, c in cases] * 2 + [f(0.0)], f)
    m = _core.Model(K)
    m.add_linear(W, bias)
    want = [[reference_dot(x[i], W[j], bias[j], order, "fp32") for j in range(len(W))] for i in range(len(x))]
    for simd in _core.simd_levels():
        y = m.run(x, opts(order, simd=simd, threads=2))[0]
        bad = [(i, j) for i in range(len(x)) for j in range(len(W)) if not same_bits(y[i, j], want[i][j])]
        assert not bad, (simd, bad[:5])
