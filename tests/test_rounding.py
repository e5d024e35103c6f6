"""The first-order rounding bound holds against exact arithmetic: every float32 evaluation of a network (torch
at several batch sizes, the native core in several orders) lies within E of the exact real value computed
here with rationals; a bound without its gamma factors is violated (so the check can fail); a hand-derived
one-layer case gives E = g(K + 1) (|w| |x| + |b|); modules without a bound say why."""

from fractions import Fraction

import numpy as np
import pytest

from batchcore.studies.rounding import forward_error_bound, gamma

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
    import batchcore as bc

    with torch.no_grad():
        yield "torch B=1", torch.cat([net(x[i:i + 1]) for i in range(len(x))]).numpy()
        yield "torch B=24", net(x).numpy()
    model = bc.from_torch(net)
    for order in ("seq", "seq-nofma", "pairwise", "lanes:16", "splitk:4", "kahan"):
        yield f"native {order}", bc.native(order=order).run_batched(model, x.numpy(), 7)


def test_every_float32_evaluation_lies_within_the_bound_of_the_exact_value(mlp_case):
    net, x, exact = mlp_case
    E, how = forward_error_bound(net, x)
    assert E is not None and E.shape == (24, 4) and "3 layers" in how
    for name, y in float32_evaluations(net, x):
        err = np.array([[abs(Fraction(float(v)) - e) for v, e in zip(row, ex, strict=True)]
                    for row, ex in zip(y, exact, strict=True)], dtype=float)
        assert np.all(err <= E), f"{name}: error {err.max():.3g} beyond the bound"
        assert err.max() > 0  # the evaluations do round: the comparison is not empty


def test_the_check_can_fail_a_bound_too_small(mlp_case):
    net, x, exact = mlp_case
    E, _ = forward_error_bound(net, x)
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
    E, _ = forward_error_bound(nn.Sequential(lin), x)
    magnitude = 1 * 2 + 2 * 1 + 0.5 * 8 + 4 * 0.5 + 0.25 * 4 + 3  # sum |w||x| + |b| = 14
    u = 2.0 ** -24
    assert E[0, 0] == pytest.approx(6 * u / (1 - 6 * u) * magnitude, rel=1e-12)
    assert gamma(6, u) == pytest.approx(6 * u / (1 - 6 * u), rel=1e-15)


def test_a_cnn_with_batch_norm_and_pooling_is_bounded_against_float64():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1, groups=2), nn.GELU(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 2 * 2, 5)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.rand(40, 1, 8, 8)
    E, _ = forward_error_bound(net, x)
    with torch.no_grad():
        truth = net.double()(x.double()).numpy()  # float64: its own error is ~1e-16 relative, far inside E
        net.float()
        for B in (1, 7, 40):
            y = torch.cat([net(x[i:i + B]) for i in range(0, 40, B)]).numpy()
            assert np.all(np.abs(y - truth) <= E), B


@pytest.mark.parametrize("module, says", [
    (nn.Linear(4, 2), "not an nn.Sequential"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4).train()), "training mode"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1)), "Softmax"),
])
def test_modules_without_a_bound_say_why(module, says):
    E, why = forward_error_bound(module, torch.randn(3, 4))
    assert E is None and says in why
