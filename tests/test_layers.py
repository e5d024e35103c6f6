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


def single_layer(kind, n=64):
    m = _core.Model(n)
    m.add_activation(kind)
    return m


@pytest.mark.parametrize("kind, ref", [
    ("tanh", math.tanh),
    ("silu", lambda x: x / (1 + math.exp(-x))),
    ("gelu", lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2))),
])
def test_activations_are_accurate(kind, ref):
    x = np.concatenate([np.linspace(-12, 12, 4001), np.geomspace(1e-6, 0.5, 200), -np.geomspace(1e-6, 0.5, 200)])
    x = x.astype(np.float32)
    y = single_layer(kind, len(x)).run(x[None, :])[0][0]
    worst = max(ulps(g, ref(float(v))) for g, v in zip(y, x) if abs(ref(float(v))) > 1e-30)
    assert worst <= 8, f"{kind}: worst error {worst:.1f} ULP"


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
