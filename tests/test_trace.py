"""bc.trace (batchcore/explain/trace.py): the first layer whose bits part between a row alone and the row in
a batch, named for a planted model (one layer's kernel switched by the batch size), and zero at every layer
of the native core."""

import numpy as np
import pytest

import batchcore as bc

torch = pytest.importorskip("torch")
nn = torch.nn


class Exact(nn.Module):
    """A linear layer computed in float64 and rounded once: the same bits at any batch size."""

    def __init__(self, k, n, seed):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.random.default_rng(seed).standard_normal((n, k)) / np.sqrt(k)))

    def forward(self, x):
        return (x.double() @ self.weight.T).float()


class Switched(Exact):
    """The planted kernel switch: another rounding of the same layer once the batch has more than one row."""

    def forward(self, x):
        y = super().forward(x)
        return y * (1 + 2.0**-20) if len(x) > 1 else y


def planted():
    return nn.Sequential(Exact(12, 16, 0), nn.ReLU(), Switched(16, 16, 1), nn.Tanh(), Exact(16, 4, 2)).eval()


def test_the_first_differing_layer_of_a_planted_model_is_named():
    x = np.random.default_rng(3).standard_normal((8, 12)).astype(np.float32)
    found = bc.trace(planted(), x, 8, row=5)
    assert [e["layer"] for e in found.layers] == ["0", "1", "2", "3", "4"]
    assert found.first_differing == "2"
    equal = [e["bits_equal_frac"] for e in found.layers]
    assert equal[:2] == [1.0, 1.0] and equal[2] < 1.0 and found.layers[2]["max_ulp"] > 0
    assert found.layers[2]["kind"] == "Switched" and "the bits first part at 2" in found.table()
    assert bc.trace(planted(), x, 1).first_differing is None  # a batch of one: the very same run


def test_the_native_core_shows_zero_after_every_layer():
    x = np.random.default_rng(4).standard_normal((16, 20)).astype(np.float32)
    chain = bc.trace(bc.mlp([20, 32, 32, 5], activation="gelu", head="softmax", seed=5), x, 16, row=7)
    assert len(chain.layers) == 6 and chain.first_differing is None
    assert all(e["bits_equal_frac"] == 1.0 and e["max_ulp"] == 0 for e in chain.layers)
    torch.manual_seed(6)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)).eval()
    images = np.random.default_rng(7).standard_normal((9, 1, 4, 4)).astype(np.float32)
    graph = bc.trace(bc.from_torch(cnn, input_shape=(1, 4, 4)), images, 9, backend=bc.native(threads=2), row=4)
    assert len(graph.layers) == 5 and graph.first_differing is None


def test_what_is_not_traced_is_named():
    x = np.zeros((4, 12), np.float32)
    with pytest.raises(bc.ArgumentError, match="at least batch_size = 8 rows"):
        bc.trace(planted(), x, 8)
    with pytest.raises(bc.ArgumentError, match="row 4 must lie in the batch of 4"):
        bc.trace(planted(), x, 4, row=4)
    with pytest.raises(bc.ArgumentError, match="traces torch modules and batchcore models"):
        bc.trace(object(), x, 2)
    with pytest.raises(bc.ArgumentError, match="traced on torch"):
        bc.trace(planted(), x, 2, backend=bc.native())
