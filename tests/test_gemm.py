"""The native GEMM (packed, vectorised, threaded) equals the native dot product bit for bit, for every
element, order, precision, thread count, instruction set, batch size and row position."""

import numpy as np
import pytest

import batchcore as bc
from batchcore import _core
from batchcore.measure.orders import run_options as opts

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


BLOCKING_CHILD = """
import sys, numpy as np
from batchcore import _core
from batchcore.measure.orders import run_options as opts
rng = np.random.default_rng(5)
out = {"source": np.array(_core.cache_sizes()["source"])}
for M, N, K in [(197, 45, 520), (30, 33, 9000), (100, 40, 4096)]:
    W = rng.standard_normal((N, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    x = rng.standard_normal((M, K)).astype(np.float32)
    m = _core.Model(K)
    m.add_linear(W, b)
    for order in ("seq", "lanes:16", "pairwise", "splitk:4"):
        for simd in _core.simd_levels():
            for threads in (1, 2, 3):
                out[f"{M},{N},{K},{order},{simd},{threads}"] = m.run(x, opts(order, threads=threads, simd=simd))[0]
np.savez(sys.argv[1], **out)
"""


@pytest.mark.parametrize("l2", ["64K", None, "32M"])
def test_blocking_from_the_cache_size_never_changes_bits(tmp_path, l2):
    """Tiles of 12 rows (64 KiB: panel-major for every K here), the machine's own, and 96 rows (32 MiB:
    row-tile-major) give every element the bits of the dot product in its order."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "BATCHCORE_L2_BYTES"}
    if l2 is not None:
        env["BATCHCORE_L2_BYTES"] = l2
    path = tmp_path / "out.npz"
    subprocess.run([sys.executable, "-c", BLOCKING_CHILD, str(path)], env=env, check=True, timeout=600)
    got = np.load(path)
    assert (str(got["source"]) == "BATCHCORE_L2_BYTES") == (l2 is not None)
    want: dict = {}
    for key in got.files:
        if key == "source":
            continue
        M, N, K, order, _simd, _threads = key.split(",")
        if (M, N, K, order) not in want:
            rng = np.random.default_rng(5)
            for m_, n_, k_ in [(197, 45, 520), (30, 33, 9000), (100, 40, 4096)]:
                W = rng.standard_normal((n_, k_)).astype(np.float32)
                b = rng.standard_normal(n_).astype(np.float32)
                x = rng.standard_normal((m_, k_)).astype(np.float32)
                if (m_, n_, k_) == (int(M), int(N), int(K)):
                    want[(M, N, K, order)] = dot_reference(x, W, b, order, "fp32")
                    break
        assert np.array_equal(got[key].view(np.uint32), want[(M, N, K, order)].view(np.uint32)), key


def test_cache_sizes_are_the_operating_systems():
    """The core reads cpu0's caches as Linux's sysfs lists them (read here independently), and bounds the
    L2 that sizes tiles to the range documented in cache_sizes.hpp."""
    import os
    from pathlib import Path

    caches = _core.cache_sizes()
    assert caches["source"] in {"sysfs", "sysconf", "default", "BATCHCORE_L2_BYTES"}
    sysfs = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        read = lambda name, index=index: (index / name).read_text().strip()  # noqa: E731
        size = read("size")
        nbytes = int(size[:-1]) << {"K": 10, "M": 20, "G": 30}[size[-1]] if size[-1] in "KMG" else int(size)
        if read("type") != "Instruction":
            sysfs[int(read("level"))] = nbytes
    if caches["source"] == "sysfs":
        assert caches["l1d_bytes"] == sysfs[1] and caches["l2_bytes"] == sysfs[2]
        assert caches["l3_bytes"] == sysfs.get(3, 0)
    if "BATCHCORE_L2_BYTES" not in os.environ:
        assert caches["blocking_l2_bytes"] == min(max(caches["l2_bytes"], 256 << 10), 4 << 20)


@pytest.mark.parametrize("order", ["seq", "lanes:16", "pairwise", "exact"])
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
def test_an_activation_applied_to_each_tile_equals_a_separate_pass(order, activation):
    """A linear layer's activation runs on each output tile as the GEMM writes it (model.cpp): the same
    bits as the linear layer alone, then the activation's own kernel over the whole output."""
    rng = np.random.default_rng(7)
    W, b = rng.standard_normal((70, 300)).astype(np.float32), rng.standard_normal(70).astype(np.float32)
    x = (rng.standard_normal((50, 300)) * 3).astype(np.float32)
    linear = bc.backends.cpu_model(bc.Model([bc.Layer("linear", {"weight": W, "bias": b})], 300))
    fused = bc.backends.cpu_model(bc.Model([bc.Layer("linear", {"weight": W, "bias": b}), bc.Layer(activation, {})], 300))
    for threads in (1, 2):
        options = opts(order, threads=threads)
        want = _core.testing.row_layer(linear.run(x, options)[0], activation, simd=_core.simd_level())
        assert np.array_equal(fused.run(x, options)[0].view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("order", ["seq", "seq-nofma"])
def test_the_k_outer_schedule_gives_each_row_its_own_bits(order):
    """From 128 rows on, seq keeps its chains in the output between K blocks (gemm.cpp): every row of a
    batch of 250 (row blocks with a remainder, K blocks with a remainder, a narrow last panel) equals that
    row run alone (the tile schedule), with and without an activation on the tiles, on wide-range data."""
    rng = np.random.default_rng(11)
    K, N = 600, 70
    W = (rng.standard_normal((N, K)) * np.exp2(rng.integers(-12, 13, (N, K)))).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    x = (rng.standard_normal((250, K)) * np.exp2(rng.integers(-12, 13, (250, K)))).astype(np.float32)
    for layers in ([bc.Layer("linear", {"weight": W, "bias": b})],
                   [bc.Layer("linear", {"weight": W, "bias": b}), bc.Layer("gelu", {})]):
        core = bc.backends.cpu_model(bc.Model(layers, K))
        for threads in (1, 2):
            options = opts(order, threads=threads)
            batch = core.run(x, options)[0]
            alone = np.concatenate([core.run(x[i:i + 1], options)[0] for i in range(0, 250, 7)])
            assert np.array_equal(batch[::7].view(np.uint32), alone.view(np.uint32)), (order, threads, len(layers))
