"""The native 2-D convolution: every output element is the dot product, in the run's order, of the taps
(ci, kh, kw) in torch's weight layout, a padded tap being a +0 term (docs/orders.md, "Convolution").
References written here: the windows gathered by plain index arithmetic, each element through
``bc.orders.dot`` (the scalar definition of every order), exact elements through Python's Fractions,
the geometry against torch's conv2d, and batch invariance by running samples alone."""

from fractions import Fraction

import numpy as np
import pytest

import batchcore as bc
from batchcore import _core
from batchcore.measure.orders import run_options as opts

# (C_in, H, W, C_out, KH, KW, stride, padding, dilation, groups)
GEOMETRIES = [
    (3, 7, 6, 5, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (4, 9, 9, 6, 3, 2, (2, 1), (1, 0), (2, 1), 2),
    (1, 5, 5, 2, 5, 5, (1, 1), (0, 0), (1, 1), 1),  # one output position, no padding
    (6, 4, 5, 6, 1, 1, (1, 2), (0, 1), (1, 1), 6),  # depthwise 1x1 with padding: border outputs are all padding
]
ORDERS = ["seq", "seq-nofma", "pairwise", "lanes:4", "splitk:4", "kahan", "dot2", "f64"]


def layer(geometry, seed=0):
    cin, h, w, cout, kh, kw, stride, padding, dilation, groups = geometry
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    conv = _core.testing.Conv2d(weight, bias, h, w, stride, padding, dilation, groups)
    return conv, weight, bias


def windows(x, geometry):
    """taps[n, g, oh, ow, k]: the K values each output element multiplies, padding as +0."""
    cin, h, w, cout, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups = geometry
    oh_n = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow_n = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cg = cin // groups
    taps = np.zeros((x.shape[0], groups, oh_n, ow_n, cg * kh * kw), np.float32)
    for g in range(groups):
        for oh in range(oh_n):
            for ow in range(ow_n):
                k = 0
                for ci in range(cg):
                    for a in range(kh):
                        for b in range(kw):
                            ih, iw = oh * sh - ph + a * dh, ow * sw - pw + b * dw
                            if 0 <= ih < h and 0 <= iw < w:
                                taps[:, g, oh, ow, k] = x[:, g * cg + ci, ih, iw]
                            k += 1
    return taps


def reference(x, weight, bias, geometry, order):
    taps = windows(x, geometry)
    n, groups, oh_n, ow_n, _ = taps.shape
    cout = weight.shape[0]
    per = cout // groups
    y = np.empty((n, cout, oh_n, ow_n), np.float32)
    for i in range(n):
        for co in range(cout):
            g = co // per
            for oh in range(oh_n):
                for ow in range(ow_n):
                    y[i, co, oh, ow] = bc.orders.dot(taps[i, g, oh, ow], weight[co].ravel(), bias[co], order)
    return y


def same_bits(a, b):
    return np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("order", ORDERS)
def test_every_element_is_the_dot_of_its_taps_in_the_order(geometry, order):
    conv, weight, bias = layer(geometry)
    x = np.random.default_rng(1).standard_normal((2, *geometry[:3])).astype(np.float32)
    want = reference(x, weight, bias, geometry, order)
    for simd in _core.simd_levels():
        for threads in (1, 2, 3):
            got = conv.run(x, opts(order, threads=threads, simd=simd))
            assert same_bits(got, want), (order, simd, threads)


@pytest.mark.parametrize("geometry", GEOMETRIES[:2])
def test_exact_is_the_correctly_rounded_sum(geometry):
    conv, weight, bias = layer(geometry, seed=2)
    x = np.random.default_rng(3).standard_normal((1, *geometry[:3])).astype(np.float32)
    got = conv.run(x, opts("exact"))
    taps = windows(x, geometry)
    per = weight.shape[0] // geometry[-1]
    rng = np.random.default_rng(4)
    for _ in range(40):
        co, oh, ow = (int(rng.integers(s)) for s in got.shape[1:])
        exact = sum((Fraction(float(a)) * Fraction(float(b))
                     for a, b in zip(taps[0, co // per, oh, ow], weight[co].ravel(), strict=False)), Fraction(float(bias[co])))
        value = got[0, co, oh, ow]
        # correctly rounded: no float32 lies strictly between the exact value and the result
        below, above = np.nextafter(value, np.float32(-np.inf)), np.nextafter(value, np.float32(np.inf))
        assert abs(Fraction(float(value)) - exact) <= abs(Fraction(float(below)) - exact)
        assert abs(Fraction(float(value)) - exact) <= abs(Fraction(float(above)) - exact)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_the_geometry_is_torchs(geometry):
    torch = pytest.importorskip("torch")
    conv, weight, bias = layer(geometry, seed=5)
    cin, h, w, cout, kh, kw, stride, padding, dilation, groups = geometry
    x = np.random.default_rng(6).standard_normal((3, cin, h, w)).astype(np.float32)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias),
                                      stride, padding, dilation, groups).numpy()
    got = conv.run(x, opts("seq"))
    assert got.shape == want.shape == (3, *conv.output_shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order", ["seq", "pairwise", "lanes:4"])
def test_a_sample_has_the_same_bits_alone_and_anywhere_in_any_batch(order):
    geometry = GEOMETRIES[1]
    conv, _, _ = layer(geometry, seed=7)
    data = np.random.default_rng(8).standard_normal((64, *geometry[:3])).astype(np.float32)
    alone = np.concatenate([conv.run(data[i:i + 1], opts(order, threads=1)) for i in range(64)])
    for B in (2, 17, 64):
        for threads in (1, 2, 3):
            got = np.concatenate([conv.run(data[i:i + B], opts(order, threads=threads)) for i in range(0, 64, B)])
            assert same_bits(got, alone), (B, threads)
    for pos in (0, 8, 16):  # sample 5 at the first, a middle and the last position of a batch of 17
        batch = data[20:37].copy()
        batch[pos] = data[5]
        assert same_bits(conv.run(batch, opts(order))[pos], alone[5])


def test_a_padded_tap_is_a_plus_zero_term():
    """x = -0 everywhere, w > 0, bias -0: every product is -0. pairwise adds them in a tree: the interior
    sums stay -0, -0 + bias -0 = -0; a window that reaches into the padding has +0 terms, and -0 + +0 = +0.
    (seq starts from s = +0, so there every output is +0.) The same signs as the dot of the window with the
    padding written as +0, and not those of a dot that leaves the padded taps out."""
    geometry = (1, 4, 4, 1, 3, 3, (1, 1), (1, 1), (1, 1), 1)
    weight = np.full((1, 1, 3, 3), 0.5, np.float32)
    bias = np.array([-0.0], np.float32)
    conv = _core.testing.Conv2d(weight, bias, 4, 4, (1, 1), (1, 1), (1, 1), 1)
    x = np.full((1, 1, 4, 4), -0.0, np.float32)
    y = conv.run(x, opts("pairwise"))[0, 0]
    border = np.ones((4, 4), bool)
    border[1:3, 1:3] = False
    assert np.all(np.signbit(y[~border])) and not np.any(np.signbit(y[border]))
    assert same_bits(y[None, None], reference(x, weight, bias, geometry, "pairwise"))
    left_out = bc.orders.dot(np.full(4, -0.0, np.float32), np.full(4, 0.5, np.float32), -0.0, "pairwise")
    assert np.signbit(left_out)  # a corner's four real taps alone would give -0
    assert not np.any(np.signbit(conv.run(x, opts("seq"))))


def test_bad_settings_and_inputs_name_the_problem():
    w = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(bc.ShapeError, match="divisible by groups"):
        _core.testing.Conv2d(w, None, 8, 8, (1, 1), (0, 0), (1, 1), 3)
    with pytest.raises(bc.ShapeError, match="larger than the padded input"):
        _core.testing.Conv2d(w, None, 2, 8, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(bc.ShapeError, match="groups must be positive"):
        _core.testing.Conv2d(w, None, 8, 8, (1, 1), (0, 0), (1, 1), 0)
    with pytest.raises(bc.ShapeError, match="stride"):
        _core.testing.Conv2d(w, None, 8, 8, (0, 1), (0, 0), (1, 1), 1)
    with pytest.raises(bc.ShapeError, match="bias has 3 values"):
        _core.testing.Conv2d(w, np.ones(3, np.float32), 8, 8, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(bc.DTypeError):
        _core.testing.Conv2d(w.astype(np.float64), None, 8, 8, (1, 1), (0, 0), (1, 1), 1)
    bad = w.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(bc.NonFiniteError):
        _core.testing.Conv2d(bad, None, 8, 8, (1, 1), (0, 0), (1, 1), 1)
    conv = _core.testing.Conv2d(w, None, 8, 8, (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(bc.ShapeError, match="the layer takes 2 x 8 x 8"):
        conv.run(np.zeros((1, 2, 8, 7), np.float32), opts("seq"))
    with pytest.raises(bc.ShapeError, match="4-D"):
        conv.run(np.zeros((2, 128), np.float32), opts("seq"))
    x = np.zeros((1, 2, 8, 8), np.float32)
    x[0, 1, 3, 3] = np.inf
    with pytest.raises(bc.NonFiniteError):
        conv.run(x, opts("seq"))
