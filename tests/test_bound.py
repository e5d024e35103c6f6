"""The first-order rounding bound (batchcore/explain/bound.py) holds against exact arithmetic: every float32
evaluation of a network (torch at several batch sizes, the native core in several orders) lies within E of
the exact real value computed here with rationals; a bound without its gamma factors is violated (so the
check can fail); a hand-derived one-layer case gives E = g(K + 1) (|w| |x| + |b|); graphs (a CNN, softmax
and log-softmax heads, residual adds) are bounded against float64; models without a bound say why."""

from fractions import Fraction

import numpy as np
import pytest

import batchcore as bc
from batchcore.explain.bound import forward_error_bound, gamma

torch = pytest.importorskip("torch")
nn = torch.nn


def exact_mlp(net, x):
    """Linear -> ReLU -> Linear in exact rational arithmetic, per row."""
    l1, l2 = net[0], net[2]
    W1, b1 = l1.weight.detach().numpy().astype(np.float64), l1.bias.detach().numpy().astype(np.float64)
    W2, b2 = l2.weight.detach().numpy().astype(np.float64), l2.bias.detach().numpy().astype(np.float64)
    out = []
    for row in x.numpy().astype(np.float64):
        r = [Fraction(v) for v in row]
        h = [max(Fraction(0), sum((Fraction(w) * a for w, a in zip(W1[j], r, strict=True)), Fraction(b1[j])))
             for j in range(len(b1))]
        out.append([sum((Fraction(w) * a for w, a in zip(W2[j], h, strict=True)), Fraction(b2[j])) for j in range(len(b2))])
    return out


@pytest.fixture(scope="module")
def mlp_case():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(96, 12), nn.ReLU(), nn.Linear(12, 4)).eval()
    x = torch.randn(24, 96)
    return net, x, exact_mlp(net, x)


def float32_evaluations(net, x):
    with torch.no_grad():
        yield "torch B=1", torch.cat([net(x[i:i + 1]) for i in range(len(x))]).numpy()
        yield "torch B=24", net(x).numpy()
    model = bc.from_torch(net)
    for order in ("seq", "seq-nofma", "pairwise", "lanes:16", "splitk:4", "kahan"):
        yield f"native {order}", bc.native(order=order).run_batched(model, x.numpy(), 7)


def test_every_float32_evaluation_lies_within_the_bound_of_the_exact_value(mlp_case):
    net, x, exact = mlp_case
    E, how = forward_error_bound(bc.from_torch(net), x.numpy())
    assert E is not None and E.shape == (24, 4) and "3 operations" in how
    for name, y in float32_evaluations(net, x):
        err = np.array([[abs(Fraction(float(v)) - e) for v, e in zip(row, ex, strict=True)]
                    for row, ex in zip(y, exact, strict=True)], dtype=float)
        assert np.all(err <= E), f"{name}: error {err.max():.3g} beyond the bound"
        assert err.max() > 0  # the evaluations do round: the comparison is not empty


def test_the_check_can_fail_a_bound_too_small(mlp_case):
    net, x, exact = mlp_case
    E, _ = forward_error_bound(bc.from_torch(net), x.numpy())
    y = dict(float32_evaluations(net, x))["native seq"]
    err = np.array([[abs(Fraction(float(v)) - e) for v, e in zip(row, ex, strict=True)]
                    for row, ex in zip(y, exact, strict=True)], dtype=float)
    # A worst-case bound sits far above typical errors (which partly cancel), but not vacuously far: within
    # a few thousand times the largest error seen. A check against E / 5000 fails, as it must.
    assert np.any(err > E / 5000)


def test_one_linear_layer_by_hand():
    lin = nn.Linear(5, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 4.0, -0.25]]))
        lin.bias.fill_(-3.0)
    x = torch.tensor([[2.0, 1.0, -8.0, 0.5, 4.0]])
    E, _ = forward_error_bound(bc.from_torch(nn.Sequential(lin)), x.numpy())
    magnitude = 1 * 2 + 2 * 1 + 0.5 * 8 + 4 * 0.5 + 0.25 * 4 + 3  # sum |w||x| + |b| = 14
    u = 2.0 ** -24
    assert E[0, 0] == pytest.approx(6 * u / (1 - 6 * u) * magnitude, rel=1e-12)
    assert gamma(6, u) == pytest.approx(6 * u / (1 - 6 * u), rel=1e-15)


def within_bound_of_float64(net, x, sizes):
    """torch's float32 outputs at each batch size lie within E of the float64 network (its own error ~1e-16
    relative, far inside E)."""
    E, how = forward_error_bound(bc.from_torch(net, input_shape=tuple(x.shape[1:])), x.numpy())
    assert E is not None, how
    with torch.no_grad():
        truth = net.double()(x.double()).numpy().reshape(len(x), -1)
        net.float()
        for B in sizes:
            y = torch.cat([net(x[i:i + B]) for i in range(0, len(x), B)]).numpy().reshape(len(x), -1)
            assert np.all(np.abs(y - truth) <= E), B
    return E


def test_a_cnn_with_batch_norm_and_pooling_is_bounded_against_float64():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1, groups=2), nn.GELU(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 2 * 2, 5)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    within_bound_of_float64(net, torch.rand(40, 1, 8, 8), (1, 7, 40))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 6)

    def forward(self, x):
        h = x + torch.nn.functional.silu(self.a(x))
        h = h * torch.sigmoid(self.b(h)) - h / 4
        return torch.log_softmax(self.head(h.mean(dim=1, keepdim=True) + h), dim=1)


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 5), nn.Softmax(dim=1)),
    lambda: nn.Sequential(nn.Linear(64, 16), nn.Hardswish(), nn.Linear(16, 16), nn.ELU(0.5), nn.Linear(16, 5),
                          nn.Mish(), nn.Linear(5, 5), nn.LeakyReLU(0.2)),
    lambda: nn.Sequential(nn.Linear(64, 32), Residual()),
], ids=["softmax", "activations", "residual"])
def test_graph_operations_are_bounded_against_float64(make):
    torch.manual_seed(2)
    net = make().eval()
    E = within_bound_of_float64(net, torch.randn(50, 64) * 3, (1, 5, 50))
    assert np.all(np.isfinite(E)) and E.max() > 0


@pytest.mark.parametrize("module, says", [
    (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), "layer norm"),
    (nn.MultiheadAttention(4, 1, batch_first=True), "attention"),
])
def test_models_without_a_bound_say_why(module, says):
    x = torch.randn(3, 2, 4) if isinstance(module, nn.MultiheadAttention) else torch.randn(3, 4)

    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, x):
            return self.m(x, x, x, need_weights=False)[0]

    model = bc.from_torch(Self() if isinstance(module, nn.MultiheadAttention) else module, input_shape=x.shape[1:])
    E, why = forward_error_bound(model, x.numpy())
    assert E is None and says in why and why.startswith("node ")


def test_a_division_by_a_computed_value_has_no_bound():
    class Ratio(nn.Module):
        def forward(self, x):
            return x / (torch.relu(x).sum(dim=1, keepdim=True) + 1)

    E, why = forward_error_bound(bc.from_torch(Ratio(), input_shape=(4,)), np.ones((2, 4), np.float32))
    assert E is None and "division by a computed value" in why
