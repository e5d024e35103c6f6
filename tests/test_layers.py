"""Fixed-sequence exp/erf/tanh and the non-linear layers, against float64 libm and plain numpy."""

import math

import numpy as np
import pytest

import batchcore as bc
from batchcore import _core


def ulps(got, want64):
    """|got - want| in float32 ULPs of the correctly rounded want."""
    want = np.float32(want64)
    return abs(float(got) - want64) / float(np.spacing(np.abs(want))) if np.isfinite(want) and want != 0 else 0


def single_layer(kind, n=64, alpha=None):
    m = _core.Model(n)
    m.add_activation(kind, alpha)
    return m


PARAMETERS = {"leaky_relu": 0.01, "elu": 1.0}  # torch's defaults


@pytest.mark.parametrize("kind, ref", [
    ("tanh", math.tanh),
    ("silu", lambda x: x / (1 + math.exp(-x))),
    ("gelu", lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2))),
    ("sigmoid", lambda x: 1 / (1 + math.exp(-x))),
    ("mish", lambda x: x * math.tanh(math.log1p(math.exp(x)))),
    ("elu", lambda x: x if x > 0 else math.expm1(x)),
    ("hardswish", lambda x: x * min(max(x + 3, 0), 6) / 6),
    ("hardsigmoid", lambda x: min(max(x + 3, 0), 6) / 6),
    ("leaky_relu", lambda x: x if x > 0 else x * float(np.float32(0.01))),
])
def test_activations_are_accurate(kind, ref):
    x = np.concatenate([np.linspace(-12, 12, 4001), np.geomspace(1e-6, 0.5, 200), -np.geomspace(1e-6, 0.5, 200)])
    x = x.astype(np.float32)
    y = single_layer(kind, len(x), PARAMETERS.get(kind)).run(x[None, :])[0][0]
    worst = max(ulps(g, ref(float(v))) for g, v in zip(y, x, strict=False) if abs(ref(float(v))) > 1e-30)
    assert worst <= 8, f"{kind}: worst error {worst:.1f} ULP"


def test_gelu_tanh_is_accurate():
    """x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): within 24 ULP of the float64 value where
    x > -4, and 160 ULP in the tail, where exp's argument (up to 90) multiplies the rounding of x + 0.044715
    x^3 (torch's own float32 tanh form loses every digit there: 1 + tanh(u) cancels)."""
    x = np.concatenate([np.linspace(-12, 12, 8001), np.geomspace(1e-6, 0.5, 200), -np.geomspace(1e-6, 0.5, 200)])
    x = x.astype(np.float32)
    y = _core.testing.row_layer(x[None, :], "gelu_tanh", simd="definition")[0]

    def ref(v):
        u = math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)
        return v / (1 + math.exp(-2 * u))

    errors = [(ulps(g, ref(float(v))), float(v)) for g, v in zip(y, x, strict=False) if abs(ref(float(v))) > 1e-30]
    assert max(e for e, v in errors if v > -4) <= 24
    assert max(e for e, v in errors) <= 160


def test_relu_and_softmax_and_layer_norm_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 37)).astype(np.float32) * 4
    m = _core.Model(37)
    m.add_activation("relu")
    assert np.array_equal(m.run(x)[0], np.maximum(x, 0))
    m = _core.Model(37)
    m.add_softmax()
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    assert np.allclose(m.run(x)[0], e / e.sum(axis=1, keepdims=True), rtol=2e-6, atol=0)
    g, b = rng.standard_normal(37).astype(np.float32), rng.standard_normal(37).astype(np.float32)
    m = _core.Model(37)
    m.add_layer_norm(g, b, 1e-5)
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5) * g + b
    assert np.allclose(m.run(x)[0], want, rtol=1e-5, atol=1e-5)


def test_exp_edges():
    m = _core.Model(6)
    m.add_activation("silu")
    x = np.array([[-200, -90, -0.0, 0.0, 90, 200]], np.float32)
    y = m.run(x)[0][0]
    assert y[0] == 0 and y[1] <= 0 and y[4] == 90 and y[5] == 200


torch = pytest.importorskip("torch", reason="torch is not installed")


def test_from_torch_runs_all_supported_layers_close_to_torch():
    nn = torch.nn
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(32)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    module = nn.Sequential(nn.Flatten(), nn.Linear(20, 32), bn, nn.GELU(), nn.Dropout(0.3), nn.Linear(32, 32),
                           nn.SiLU(), nn.LayerNorm(32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4),
                           nn.Softmax(dim=-1))
    model = bc.from_torch(module)
    assert model.input_width == 20 and model.output_width == 4
    x = np.random.default_rng(1).standard_normal((50, 20)).astype(np.float32)
    want = bc.torch().run(model, x)
    for order in ["seq", "exact", "pairwise"]:
        assert np.allclose(bc.native(order=order).run(model, x), want, rtol=1e-4, atol=1e-6)
    assert np.allclose(bc.numpy().run(model, x), want, rtol=1e-4, atol=1e-6)
    assert module.training  # the user's module is left as it was


@pytest.mark.parametrize("layer, name", [
    (lambda nn: nn.Conv1d(1, 1, 3), "Conv1d"),
    (lambda nn: nn.GELU(approximate="tanh"), "GELU"),
    (lambda nn: nn.Softmax(dim=0), "Softmax"),
    (lambda nn: nn.LSTM(4, 4), "LSTM"),
])
def test_from_torch_names_unsupported_layers(layer, name):
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), layer(torch.nn))
    with pytest.raises(bc.UnsupportedLayerError, match=name):
        bc.from_torch(module)


def test_mlp_torch_module_is_equivalent():
    model = bc.mlp([30, 20, 7], activation="tanh", head="softmax", seed=3)
    x = np.random.default_rng(2).standard_normal((10, 30)).astype(np.float32)
    assert np.allclose(bc.torch().run(model, x), bc.native().run(model, x), rtol=1e-5, atol=1e-7)


# -- the vectorised row layers equal their definitions, bit for bit, on every instruction set --------------


def adversarial_row_inputs():
    """Signed zeros, subnormals, the definitions' branch points and their neighbours, huge values,
    infinities, NaN, and a dense sweep of ordinary values (every 2**20th float32 bit pattern)."""
    f = np.float32
    tiny = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754942e-38, -1.1754942e-38], f)
    edges = np.array([0.3, 9.1, 0.5, 88.72283935546875, -103.97208404541016, 89.0, -104.0, 44.36, -51.98,
                      -87.3, -88.0, 126.5, 1e19, 1.8446743e19, 3e38, f(np.finfo(f).max)], f)
    edges = np.concatenate([edges, -edges])
    with np.errstate(over="ignore"):  # the neighbours of the largest float are infinities
        around = np.concatenate([np.nextafter(edges, f(np.inf)), np.nextafter(edges, f(-np.inf))])
    special = np.array([np.inf, -np.inf, np.nan, -np.nan], f)
    sweep = (np.arange(0, 2**32, 2**20, dtype=np.uint64).astype(np.uint32)).view(f)
    return np.concatenate([tiny, edges, around, special, sweep])


def same_bits_or_both_nan(a, b):
    nan = np.isnan(a) & np.isnan(b)
    return (a.view(np.uint32) == b.view(np.uint32)) | nan


ACTIVATIONS = ["relu", "gelu", "silu", "tanh", "gelu_tanh", "sigmoid", "relu6", "hardsigmoid", "hardswish", "mish",
               "leaky_relu", "elu"]


@pytest.mark.parametrize("function", ACTIVATIONS)
@pytest.mark.parametrize("simd", _core.simd_levels())
def test_vectorised_activations_equal_their_definitions(function, simd):
    x = adversarial_row_inputs()
    # rows of 125 = 64 + 32 + 16 + 13: every block size of the vector forms (4, 2 and 1 vectors, row_kernels.inl)
    # and a tail of lanes go through the same code
    width = 125
    x = np.resize(x, (len(x) + width - 1) // width * width).reshape(-1, width)
    alpha = {"leaky_relu": 0.2, "elu": 1.3}.get(function, 0.0)
    want = _core.testing.row_layer(x, function, simd="definition", alpha=alpha)
    got = _core.testing.row_layer(x, function, simd=simd, alpha=alpha)
    bad = got.view(np.uint32) != want.view(np.uint32)  # every bit, NaN payloads included
    first = zip(x[bad][:5], got[bad][:5], want[bad][:5], strict=True)
    assert not bad.any(), [(float(v), float(g), float(w)) for v, g, w in first]
    # A NaN out only for a NaN in, and then that very NaN (the definitions return their NaN argument).
    nan_in = np.isnan(x)
    assert np.array_equal(np.isnan(want), nan_in) and np.array_equal(want[nan_in].view(np.uint32), x[nan_in].view(np.uint32))


def float_range(lo, hi, step):
    """Every step-th float32 between lo and hi (bit patterns; lo and hi of one sign)."""
    a, b = sorted(np.array([lo, hi], np.float32).view(np.int32))
    return np.arange(a, b, step, dtype=np.int32).view(np.float32)


@pytest.mark.parametrize("simd", _core.simd_levels())
def test_exponentials_into_the_subnormals_equal_their_definitions(simd):
    """Where bc_exp's 2^k scaling rounds or overflows (the AVX-512 GELU and SiLU scale in one instruction),
    densely: GELU's exp(-x^2/2) for |x| in 12.9..14.5 (subnormal), SiLU's exp(-x) for x in -104..-86 (k = 128,
    overflow) and in 86..104 (subnormal)."""
    tiny = np.finfo(np.float32).tiny
    for function, lo, hi in [("gelu", -14.5, -12.9), ("gelu", 12.9, 14.5), ("silu", -104.0, -86.0), ("silu", 86.0, 104.0)]:
        x = float_range(lo, hi, 31)
        x = np.resize(x, (len(x) + 124) // 125 * 125).reshape(-1, 125)  # blocks of 4, 2, 1 vectors, lanes
        want = _core.testing.row_layer(x, function, simd="definition")
        got = _core.testing.row_layer(x, function, simd=simd)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (function, lo, simd)
        if function == "gelu" and lo < 0:  # the results themselves are subnormal there
            assert ((want != 0) & (np.abs(want) < tiny)).any()
        if function == "silu" and lo < 0:  # x / inf and x / (a finite huge number) both occur
            assert (want == 0).any() and (want != 0).any()


def test_activations_keep_their_limits_at_huge_and_infinite_inputs():
    f = np.float32
    x = np.array([[1e19, 1.5e19, 3e38, np.inf, -1e19, -3e38, -np.inf, -200.0]], f)
    gelu = _core.testing.row_layer(x, "gelu", simd="definition")[0]
    assert np.array_equal(gelu[:4], x[0, :4]) and np.all(gelu[4:] == 0) and np.all(np.signbit(gelu[4:]))
    silu = _core.testing.row_layer(x, "silu", simd="definition")[0]
    assert np.array_equal(silu[:4], x[0, :4]) and np.all(silu[4:] == 0) and np.all(np.signbit(silu[4:]))
    tanh = _core.testing.row_layer(x, "tanh", simd="definition")[0]
    assert np.array_equal(tanh, np.where(x[0] > 0, f(1), f(-1)))
    gelu_tanh = _core.testing.row_layer(x, "gelu_tanh", simd="definition")[0]
    assert np.array_equal(gelu_tanh[:4], x[0, :4]) and np.all(gelu_tanh[4:] == 0) and np.all(np.signbit(gelu_tanh[4:]))
    sigmoid = _core.testing.row_layer(x, "sigmoid", simd="definition")[0]
    assert np.array_equal(sigmoid, np.where(x[0] > 0, f(1), f(0))) and not np.signbit(sigmoid).any()


def test_new_activations_keep_signed_zeros_and_limits():
    f = np.float32
    x = np.array([[-np.inf, -3e38, -200.0, -3.0, -0.0, 0.0, 3.0, 25.0, 3e38, np.inf]], f)

    def run(name, alpha=0.0):
        return _core.testing.row_layer(x, name, simd="definition", alpha=alpha)[0]

    hardswish, mish = run("hardswish"), run("mish")
    assert np.array_equal(hardswish, np.array([0, 0, 0, 0, 0, 0, 3, 25, 3e38, np.inf], f))  # no overflow
    assert np.array_equal(np.signbit(hardswish), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])  # x * 0 keeps x's sign
    assert np.array_equal(run("hardsigmoid"), np.array([0, 0, 0, 0, 0.5, 0.5, 1, 1, 1, 1], f))
    assert ulps(mish[6], 3 * math.tanh(math.log1p(math.exp(3.0)))) <= 4 and np.array_equal(mish[7:], x[0, 7:])
    assert np.array_equal(mish[:3], [0, 0, 0]) and np.signbit(mish[:5]).all() and mish[3] < 0
    elu = run("elu", 1.5)
    assert np.array_equal(elu[:3], [-1.5, -1.5, -1.5]) and elu[4] == 0 and np.signbit(elu[4]) and not np.signbit(elu[5])
    assert np.array_equal(elu[5:], x[0, 5:])
    leaky = run("leaky_relu", 0.25)
    assert np.array_equal(leaky, np.where(x[0] > 0, x[0], x[0] * f(0.25))) and np.signbit(leaky[4])


@pytest.mark.parametrize("name, alpha, problem", [
    ("elu", None, "needs its parameter alpha"), ("leaky_relu", None, "negative slope"),
    ("relu", 0.5, "takes no parameter"), ("elu", float("nan"), "finite"), ("leaky_relu", 1e39, "finite"),
])
def test_activation_parameters_are_checked(name, alpha, problem):
    with pytest.raises(bc.ArgumentError, match=problem):
        _core.Model(4).add_activation(name, alpha)
    with pytest.raises(bc.ArgumentError, match=problem):
        _core.Graph([4]).add_activation(0, name, alpha)


def test_relu6_is_relu_clamped_at_six():
    x = np.array([[-np.inf, -3.0, -0.0, 0.0, 1e-45, 2.5, 5.9999995, 6.0, 6.0000005, 1e30, np.inf]], np.float32)
    y = _core.testing.row_layer(x, "relu6", simd="definition")[0]
    assert np.array_equal(y, np.clip(x[0], 0, 6)) and not np.signbit(y).any()


def test_fixed_log_is_accurate_and_exact_where_it_must_be():
    f = np.float32
    x = np.concatenate([np.geomspace(1e-44, 3e38, 20001), np.linspace(0.5, 2.0, 4001),
                        [1.41421356, 1.4142137, 0.70710677, 1.1754942e-38, 1e-45]]).astype(f)
    got = _core.testing.fixed_math(x, "log")
    worst = max(ulps(g, math.log(float(v))) for g, v in zip(got, x, strict=False) if v != 1)
    assert worst <= 2, f"log: worst error {worst:.2f} ULP"
    assert _core.testing.fixed_math(np.array([1.0], f), "log")[0] == 0.0  # log 1 = +0 exactly
    edges = _core.testing.fixed_math(np.array([0.0, -0.0, np.inf, -1.0, np.nan], f), "log")
    assert edges[0] == -np.inf and edges[1] == -np.inf and edges[2] == np.inf and np.isnan(edges[3:]).all()


@pytest.mark.parametrize("simd", _core.simd_levels())
def test_vectorised_softmax_layer_norm_and_batch_norm_equal_their_definitions(simd):
    rng = np.random.default_rng(7)
    width = 77
    rows = [rng.standard_normal(width) * s for s in (1e-3, 1, 30, 80, 1e3)]
    rows.append(np.where(np.arange(width) % 2 == 0, 100.0, -100.0))  # exponentials that underflow
    rows.append(np.resize(adversarial_row_inputs()[:24], width))        # zeros, subnormals, edges
    x = np.array(rows, np.float32)
    finite = x.copy()
    finite[~np.isfinite(finite)] = 1.0
    g, b = rng.standard_normal(width).astype(np.float32), rng.standard_normal(width).astype(np.float32)
    for function, args, data in [("softmax", {}, finite), ("layer_norm", dict(p0=g, p1=b, eps=1e-5), finite),
                                 ("batch_norm", dict(p0=g, p1=b), x)]:
        want = _core.testing.row_layer(data, function, simd="definition", **args)
        got = _core.testing.row_layer(data, function, simd=simd, **args)
        assert same_bits_or_both_nan(got, want).all(), function


def test_a_models_row_layers_run_the_vectorised_kernels_with_the_definitions_bits():
    """The whole model against the same layers composed by hand: each linear layer as a model of its own
    (seq is batch invariant, so its bits are the same alone), each row layer by layers.hpp's definition."""
    model = bc.mlp([40, 300, 300, 10], activation="gelu", head="softmax", seed=4)
    x = np.random.default_rng(1).standard_normal((33, 40)).astype(np.float32)
    want = x
    for layer in model.layers:
        if layer.kind == "linear":
            alone = bc.Model([layer], want.shape[1])
            want = bc.native(threads=1, simd="scalar").run(alone, want)
        else:
            want = _core.testing.row_layer(want, layer.kind, simd="definition")
    for simd in _core.simd_levels():
        for threads in (1, 2, 3):
            got = bc.native(simd=simd, threads=threads).run(model, x)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (simd, threads)
