"""Silent precision changes (batchcore/explain/precision.py): a layer whose inputs are rounded to bfloat16 or
TF32 is flagged with the bits it kept, every float32 summation tree is not (native orders, Python summations
in planted trees), a real library's bf16 mode (torch's oneDNN fpmath on CPUs that honour it, a Keras
mixed-precision policy) is flagged where it changes the bits, and the per-term rounding counts are those of
the trees written out by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import batchcore as bc
from batchcore.explain.precision import gamma, roundings_per_term
from batchcore.explain.tree import leaves
from test_reveal import PLANTED, PlantedSum


def keep_bits(a, bits):
    """float32 values rounded to nearest even with ``bits`` significant bits (bfloat16: 8, TF32: 11)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    drop = 24 - bits
    u = ((u + (1 << (drop - 1)) - 1 + ((u >> drop) & 1)) >> drop) << drop
    return u.astype(np.uint32).view(np.float32)


class ReducedLibrary:
    """A stand-in library: inputs and weights rounded to ``bits`` significant bits, products and sums in
    float64, the result rounded to float32 (what oneDNN's bf16 / tf32 fpmath modes do, more accurately)."""

    def __init__(self, bits):
        self.bits, self.label = bits, f"{bits}-bit inputs"

    def run(self, model, x):
        w = model.layers[0].params["weight"]
        a, b = keep_bits(x, self.bits).astype(np.float64), keep_bits(w, self.bits).astype(np.float64)
        return (a @ b.T).astype(np.float32)


def test_rounding_to_the_formats_bits():
    x = np.array([1 + 2 ** -10, 1 + 2 ** -12, 1 + 3 * 2 ** -8], np.float32)
    assert keep_bits(x, 8).tolist() == [1.0, 1.0, 1 + 2 ** -6]  # 1 + 3/256: a tie, to even
    assert keep_bits(x, 11).tolist() == [1 + 2 ** -10, 1.0, 1 + 3 * 2 ** -8]


@pytest.mark.parametrize("bits, cause", [(8, "bfloat16"), (11, "TF32 or float16")])
@pytest.mark.parametrize("K", [7, 300, 4096])
def test_a_layer_that_rounds_its_inputs_is_flagged_with_the_bits_it_kept(bits, cause, K):
    found = bc.reveal(ReducedLibrary(bits), K, batch_size=2, check_rows=20)
    assert not found.float32 and found.precision["bits"] == bits
    assert cause in found.precision["cause"] and found.precision["error_over_bound"] > 1
    assert "not float32" in str(found)


@pytest.mark.parametrize("order", ["seq", "seq-nofma", "pairwise", "lanes:16", "splitk:4", "kahan", "exact"])
def test_native_orders_stay_within_float32s_bound(order):
    found = bc.reveal(bc.native(order=order, threads=1), 300, batch_size=3, check_rows=20)
    assert found.float32 and found.precision["cause"] is None


@pytest.mark.parametrize("tree", PLANTED)
def test_python_summations_in_planted_trees_are_float32(tree):
    assert bc.reveal(PlantedSum(tree), len(leaves(tree)), batch_size=2, N=2, check_rows=50).float32


def test_roundings_per_term_by_hand():
    seq = ((((0, 1), 2), 3), 4)  # term 0 passes 4 additions, term 4 one; each adds its product's rounding
    assert roundings_per_term(seq, 5).tolist() == [5, 5, 4, 3, 2]
    assert roundings_per_term(((0, 1), (2, 3)), 4).tolist() == [3, 3, 3, 3]
    assert roundings_per_term(((0, 1, 2), 3), 4).tolist() == [4, 4, 4, 2]  # a 3-term add: up to 2 roundings
    assert roundings_per_term(None, 3).tolist() == [3, 3, 3]


@pytest.mark.parametrize("tree", PLANTED + [((((0, 1), 2), 3), (4, 5))])
def test_the_bound_holds_for_float32_trees_against_exact_sums(tree):
    """The per-term bound (what the flag holds a library to) holds for every float32 evaluation of the tree
    on random rows, against the exact rational sum: the flag cannot fire on a float32 library."""
    K = len(leaves(tree))
    rng = np.random.default_rng(5)
    r = roundings_per_term(tree, K)
    library = PlantedSum(tree)
    w = rng.standard_normal((1, K)).astype(np.float32)
    model = bc.Model([bc.Layer("linear", {"weight": w, "bias": np.zeros(1, np.float32)})], K)
    x = rng.standard_normal((500, K)).astype(np.float32)
    y = library.run(model, x)[:, 0]
    for row, got in zip(x, y, strict=True):
        exact = sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(row, w[0], strict=True))
        bound = float(np.sum(gamma(r) * np.abs(row.astype(np.float64) * w[0])))
        assert abs(Fraction(float(got)) - exact) <= bound


def test_torch_in_onednn_bf16_mode_is_flagged_where_the_cpu_honours_it():
    """torch's ``fp32_precision = "bf16"`` (what ``set_float32_matmul_precision("medium")`` sets) asks oneDNN
    for bf16 products; CPUs with AMX honour it, others (an AMD Zen 4 with AVX512_BF16) keep float32. The
    test asks torch itself which happened (1 + 2^-10 times 1, summed) and holds the flag to it."""
    torch = pytest.importorskip("torch")
    mkldnn = torch.backends.mkldnn.matmul
    before = mkldnn.fp32_precision
    mkldnn.fp32_precision = "bf16"
    try:
        x = torch.full((64, 512), 1 + 2 ** -10)
        with torch.no_grad():
            rounded = float(torch.nn.functional.linear(x, torch.ones(64, 512))[0, 0]) == 512.0
        found = bc.reveal(bc.torch(threads=1, measure_memory=False), 512, batch_size=64, check_rows=20)
    finally:
        mkldnn.fp32_precision = before
    assert found.float32 is not rounded
    if rounded:
        assert found.precision["bits"] == 8
    assert bc.reveal(bc.torch(threads=1, measure_memory=False), 512, batch_size=64, check_rows=20).float32


def test_a_keras_mixed_bfloat16_policy_set_elsewhere_is_flagged():
    """A global ``mixed_bfloat16`` policy (set once, anywhere in a program) makes every Dense layer compute in
    bfloat16 afterwards: the layer revealed under it is flagged, the same layer under float32 is not."""
    keras = pytest.importorskip("keras")
    backend = bc.keras(mode="call")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        flagged = bc.reveal(backend, 16, batch_size=2, check_rows=10)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not flagged.float32 and flagged.precision["bits"] == 8
    assert bc.reveal(backend, 16, batch_size=2, check_rows=10).float32
