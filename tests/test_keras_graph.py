"""Keras models read into graphs (batchcore/frontends/keras/graph.py): a CNN, a functional residual model
and a subclassed model against references written here from the layers' definitions and Keras's own
weights (in Keras's layout: the test moves the images itself), exact rationals on sampled elements, Keras
itself, batch invariance, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

import batchcore as bc
from graph_reference import attention, avg_pool2d, conv2d, linear, max_pool2d, row_function
from keras_models import assert_batch_invariant, import_keras
from reference import reference_dot

f32 = np.float32


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def weights(layer):
    return [v.numpy() for v in layer.weights]


def folded(layer):
    """BatchNormalization in inference form, folded in float64 and rounded once (docs/models.md)."""
    gamma, beta, mean, var = (np.float64(v) for v in weights(layer))
    scale = gamma / np.sqrt(var + layer.epsilon)
    return scale.astype(f32), (beta - mean * scale).astype(f32)


def cnn(keras):
    keras.utils.set_random_seed(21)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((12, 12, 3)), L.Conv2D(8, 3, padding="same", activation="relu"), L.BatchNormalization(),
        L.MaxPooling2D(), L.DepthwiseConv2D(3, padding="same"), L.Conv2D(6, 3, strides=2), L.AveragePooling2D(2),
        L.Flatten(), L.Dense(10, activation="softmax")], name="cnn")
    rng = np.random.default_rng(22)
    model.layers[1].set_weights([rng.uniform(0.5, 2, 8), rng.standard_normal(8), rng.standard_normal(8),
                                 rng.uniform(0.1, 3, 8)])
    return model


def cnn_reference(model, x):
    """One NHWC image through the CNN by the definitions: channels first for the convolutions (the test's
    own transposes of the image and of Keras's HWIO kernels), back to NHWC to flatten as Keras does."""
    conv, bn, _, depthwise, strided, _, _, dense = model.layers
    h = x.transpose(2, 0, 1)
    k, b = weights(conv)
    h = row_function(conv2d(h, k.transpose(3, 2, 0, 1), b, [1, 1], [1, 1], [1, 1], 1, "seq"), "relu")
    scale, shift = folded(bn)
    h = (h * scale[:, None, None]).astype(f32) + shift[:, None, None]
    h = max_pool2d(h, [2, 2], [2, 2], [0, 0], [1, 1], False)
    k, b = weights(depthwise)  # (3, 3, channels, 1): one 3x3 filter per channel
    h = conv2d(h, k[:, :, :, 0].transpose(2, 0, 1)[:, None], b, [1, 1], [1, 1], [1, 1], h.shape[0], "seq")
    k, b = weights(strided)
    h = conv2d(h, k.transpose(3, 2, 0, 1), b, [2, 2], [0, 0], [1, 1], 1, "seq")
    h = avg_pool2d(h, [2, 2], [2, 2], [0, 0], False, False, 0)
    k, b = weights(dense)
    return row_function(linear(h.transpose(1, 2, 0).reshape(-1), k.T.copy(), b, "seq")[None], "softmax")[0]


def test_a_keras_cnn_equals_its_reference_bit_for_bit_keras_closely_and_is_batch_invariant(keras):
    model = cnn(keras)
    read = bc.from_keras(model)
    x = np.random.default_rng(23).standard_normal((130, 12, 12, 3)).astype(f32)
    got = bc.native().run(read, x[:4])
    want = np.stack([cnn_reference(model, image) for image in x[:4]])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_allclose(got, np.asarray(model(x[:4], training=False)), rtol=1e-5, atol=1e-7)
    assert_batch_invariant(read, x)
    # Between the layers the images stay channels first: one permute in, one out before Flatten.
    assert [n.op for n in read.nodes].count("permute") == 2


@pytest.mark.parametrize("strides, dilation", [((2, 2), (1, 1)), ((1, 1), (1, 2))], ids=["strided", "dilated"])
def test_a_convolutions_dot_products_follow_the_seq_order_over_keras_kernels(keras, strides, dilation):
    """Sampled outputs of a strided or dilated grouped convolution against exact rational arithmetic on
    taps taken from Keras's own NHWC image and HWIO kernel, in the core's order (input channel, then
    kernel row, then kernel column)."""
    keras.utils.set_random_seed(24)
    conv = keras.layers.Conv2D(4, 3, strides=strides, dilation_rate=dilation, groups=2, padding="valid")
    model = keras.Sequential([keras.Input((9, 11, 4)), conv])
    kernel, bias = weights(conv)  # (3, 3, 2, 4)
    x = np.random.default_rng(25).standard_normal((2, 9, 11, 4)).astype(f32)
    got = bc.native().run(bc.from_keras(model), x)
    (sh, sw), (dh, dw) = strides, dilation
    for n, oh, ow, co in [(0, 0, 0, 0), (1, 3, 2, 3), (0, 2, 3, 2)]:
        g = co // 2
        taps = [x[n, sh * oh + dh * kh, sw * ow + dw * kw, 2 * g + ci] for ci in range(2) for kh in range(3)
                for kw in range(3)]
        ws = [kernel[kh, kw, ci, co] for ci in range(2) for kh in range(3) for kw in range(3)]
        assert got[n, oh, ow, co] == f32(reference_dot(taps, ws, bias[co], "seq"))


def residual(keras):
    keras.utils.set_random_seed(26)
    L = keras.layers
    inp = keras.Input((16,))
    h = L.LayerNormalization()(L.Add()([inp, L.Dense(16, activation="gelu")(inp)]))
    out = L.Dense(4)(L.Subtract()([h, keras.ops.multiply(h, 0.5)]))
    return keras.Model(inp, out, name="residual")


def residual_reference(model, x):
    dense1, dense2 = (la for la in model.layers if type(la).__name__ == "Dense")
    ln = next(la for la in model.layers if type(la).__name__ == "LayerNormalization")
    k, b = weights(dense1)
    h = (x + row_function(linear(x, k.T.copy(), b, "seq"), "gelu")).astype(f32)
    g, beta = weights(ln)
    h = row_function(h, "layer_norm", g, beta, eps=ln.epsilon)
    h = (h - (h * f32(0.5)).astype(f32)).astype(f32)
    k, b = weights(dense2)
    return linear(h, k.T.copy(), b, "seq")


class TwoLayers:
    """A subclassed Keras model (made inside the test, where keras is imported)."""

    @staticmethod
    def build(keras):
        class Net(keras.Model):
            def __init__(self):
                super().__init__(name="subclassed")
                self.hidden, self.head = keras.layers.Dense(12, activation="tanh"), keras.layers.Dense(3)

            def call(self, x):
                h = self.hidden(x)
                return self.head(h * 2.0)

        keras.utils.set_random_seed(27)
        net = Net()
        net(np.zeros((1, 6), f32))
        return net


def subclassed_reference(model, x):
    k, b = weights(model.hidden)
    h = row_function(linear(x, k.T.copy(), b, "seq"), "tanh")
    k, b = weights(model.head)
    return linear((h * f32(2.0)).astype(f32), k.T.copy(), b, "seq")


def transformer_block(keras, causal=False):
    """The Keras tutorial's encoder block: self-attention, residual, layer norm, feed-forward, residual,
    layer norm; then the mean over positions and a classifier."""
    keras.utils.set_random_seed(33)
    L = keras.layers
    inp = keras.Input((10, 16))
    attn = L.MultiHeadAttention(num_heads=2, key_dim=8, value_dim=6)(inp, inp, use_causal_mask=causal)
    x = L.LayerNormalization(epsilon=1e-6)(inp + attn)
    ffn = L.Dense(16)(L.Dense(32, activation="relu")(x))
    out = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, ffn]))
    return keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling1D()(out)), name="transformer")


def transformer_reference(model, x, causal=False):
    mha = next(la for la in model.layers if type(la).__name__ == "MultiHeadAttention")
    ln1, ln2 = (la for la in model.layers if type(la).__name__ == "LayerNormalization")
    ff1, ff2, head = (la for la in model.layers if type(la).__name__ == "Dense")

    def heads(dense, h):  # (positions, features) -> (heads, positions, dim), from the EinsumDense kernel
        kernel, bias = weights(dense)
        n, dim = kernel.shape[1:]
        return linear(h, kernel.reshape(len(kernel), n * dim).T.copy(), bias.reshape(-1), "seq").reshape(
            len(h), n, dim).transpose(1, 0, 2)

    q, k, v = (heads(d, x) for d in (mha._query_dense, mha._key_dense, mha._value_dense))
    o = attention(q, k, v, f32(1 / np.sqrt(8)), causal, "seq").transpose(1, 0, 2).reshape(len(x), -1)
    kernel, bias = weights(mha._output_dense)
    h = (x + linear(o, kernel.reshape(-1, kernel.shape[-1]).T.copy(), bias, "seq")).astype(f32)
    h = row_function(h, "layer_norm", *weights(ln1), eps=ln1.epsilon)
    k1, b1 = weights(ff1)
    k2, b2 = weights(ff2)
    f = linear(row_function(linear(h, k1.T.copy(), b1, "seq"), "relu"), k2.T.copy(), b2, "seq")
    h = row_function((h + f).astype(f32), "layer_norm", *weights(ln2), eps=ln2.epsilon)
    total = h[0].copy()
    for row in h[1:]:  # the mean over positions: a sum in order, then one division
        total = (total + row).astype(f32)
    k, b = weights(head)
    return linear((total / f32(len(h))).astype(f32)[None], k.T.copy(), b, "seq")[0]


@pytest.mark.parametrize("make, reference, shape", [(residual, residual_reference, (16,)),
                                                    (TwoLayers.build, subclassed_reference, (6,)),
                                                    (transformer_block, transformer_reference, (10, 16))],
                         ids=["residual", "subclassed", "transformer"])
def test_functional_subclassed_and_transformer_models_equal_their_references(keras, make, reference, shape):
    model = make(keras)
    read = bc.from_keras(model, input_shape=shape)
    x = np.random.default_rng(28).standard_normal((130, *shape)).astype(f32)
    got = bc.native().run(read, x[:5])
    want = np.stack([reference(model, row) for row in x[:5]]) if len(shape) > 1 else reference(model, x[:5])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_allclose(got, np.asarray(model(x[:5], training=False)), rtol=1e-5, atol=1e-6)
    assert_batch_invariant(read, x)


def test_sequences_token_ids_causal_attention_sigmoid_and_relu6_are_read_close_to_keras(keras):
    keras.utils.set_random_seed(29)
    L = keras.layers
    conv1d = keras.Sequential([keras.Input((12, 4)), L.Conv1D(6, 3, padding="same", activation="tanh"),
                               L.Conv1D(5, 2, strides=2), L.GlobalAveragePooling1D(), L.Dense(3)])
    tokens = keras.Sequential([keras.Input((7,), dtype="int32"), L.Embedding(20, 8), L.GlobalAveragePooling1D(),
                               L.Dense(2)])
    rng = np.random.default_rng(30)
    causal = transformer_block(keras, causal=True)
    gates = keras.Sequential([keras.Input((6, 6, 3)), L.Conv2D(8, 3, padding="same", activation="relu6"),
                              L.GlobalAveragePooling2D(), L.Dense(8, activation="sigmoid"), L.ReLU(max_value=6.0),
                              L.Dense(2)])
    for model, x in [(conv1d, rng.standard_normal((6, 12, 4)).astype(f32)), (tokens, rng.integers(0, 20, (6, 7))),
                     (causal, rng.standard_normal((6, 10, 16)).astype(f32)),
                     (gates, 4 * rng.standard_normal((6, 6, 6, 3)).astype(f32))]:
        read = bc.from_keras(model)
        np.testing.assert_allclose(bc.native().run(read, x), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


def test_concatenate_joins_branches_of_other_widths_and_along_positions(keras):
    """Two Dense branches of 5 and 3 features joined on the last axis, and a sequence joined to itself
    along its positions: the reference joins Keras's own weights' outputs with numpy."""
    keras.utils.set_random_seed(34)
    L = keras.layers
    inp = keras.Input((6,))
    wide, narrow = L.Dense(5, activation="relu"), L.Dense(3)
    head = L.Dense(2)
    model = keras.Model(inp, head(L.Concatenate()([wide(inp), narrow(inp)])))
    x = np.random.default_rng(35).standard_normal((130, 6)).astype(f32)
    read = bc.from_keras(model)
    k1, b1 = weights(wide)
    k2, b2 = weights(narrow)
    k3, b3 = weights(head)
    joined = np.concatenate([row_function(linear(x[:4], k1.T.copy(), b1, "seq"), "relu"),
                             linear(x[:4], k2.T.copy(), b2, "seq")], axis=1)
    want = linear(joined, k3.T.copy(), b3, "seq")
    assert np.array_equal(bc.native().run(read, x[:4]).view(np.uint32), want.view(np.uint32))
    assert_batch_invariant(read, x)
    seq_in = keras.Input((4, 3))
    steps = keras.Model(seq_in, L.Concatenate(axis=1)([seq_in, L.Dense(3)(seq_in)]))
    s = np.random.default_rng(36).standard_normal((5, 4, 3)).astype(f32)
    np.testing.assert_allclose(bc.native().run(bc.from_keras(steps), s), np.asarray(steps(s)), rtol=1e-6, atol=1e-7)


def test_a_keras_cnn_sweeps_through_keras_and_the_native_core(keras):
    model = cnn(keras)
    x = np.random.default_rng(31).standard_normal((32, 12, 12, 3)).astype(f32)
    res = bc.sweep(model, [1, 5, 32], backends=[bc.keras(mode="call"), bc.native()], data=x,
                   timer=bc.Timer(min_time_s=0, timeout_s=0.1, target=0.5), rounds=1, ceilings=False, progress=False)
    assert {p["backend"] for p in res.points} == {"keras[call]", "native[seq]"}
    assert all(p["bitwise_equal_frac"] == 1 for p in res.points if p["backend"] == "native[seq]")
    assert all(p["max_ulp_vs_exact"] is not None for p in res.points)
    with pytest.raises(bc.ArgumentError, match="as the torch module it was read from; cnn was read from keras"):
        bc.sweep(model, [1], backends=[bc.torch()], data=x, progress=False)


@pytest.mark.parametrize("build, match", ids=["uneven-same", "maximum", "channels-first", "two-outputs", "softmax-axis"],
                         argvalues=[
    (lambda k: k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(2, 3, strides=2, padding="same", name="c")]),
     r"layer 'c' \(Conv2D\): padding='same' pads 1 rows or columns here: unevenly"),
    (lambda k: (lambda i: k.Model(i, k.layers.Maximum(name="max")([i, i])))(k.Input((3,))),
     r"layer 'max' \(Maximum\): it takes 2 inputs, which is not read"),
    (lambda k: k.Sequential([k.Input((2, 8, 8)), k.layers.Conv2D(2, 3, data_format="channels_first", name="cf")]),
     r"layer 'cf' \(Conv2D\): data_format='channels_first' is not read"),
    (lambda k: (lambda i: k.Model(i, [k.layers.Dense(2)(i), k.layers.Dense(3)(i)], name="two"))(k.Input((3,))),
     r"two has 1 input\(s\) and 2 output\(s\)"),
    (lambda k: k.Sequential([k.Input((4, 5)), k.layers.Softmax(axis=1, name="sm"), k.layers.Flatten()]), None),
])
def test_what_the_graph_reader_does_not_read_is_named(keras, build, match):
    if match is None:  # a softmax over another axis than the last is read: along that axis of the sample
        model = build(keras)
        x = np.random.default_rng(32).standard_normal((3, 4, 5)).astype(f32)
        np.testing.assert_allclose(bc.native().run(bc.from_keras(model), x), np.asarray(model(x)), rtol=1e-6, atol=1e-7)
        return
    with pytest.raises(bc.UnsupportedLayerError, match=match):
        bc.from_keras(build(keras))


def test_hard_sigmoid_hard_silu_mish_elu_and_leaky_relu_are_read_with_keras_parameters(keras):
    """Activation strings take Keras's defaults (elu alpha 1, leaky_relu slope 0.2), the layers their own
    (LeakyReLU 0.3 unless given); the chain by the definitions, bit for bit, and close to Keras."""
    keras.utils.set_random_seed(36)
    L = keras.layers
    names = ["hard_sigmoid", "hard_silu", "mish", "elu", "leaky_relu"]
    model = keras.Sequential([keras.Input((6,)), *[L.Dense(6, activation=a) for a in names], L.LeakyReLU(),
                              L.Dense(6), L.ELU(alpha=0.5), L.LeakyReLU(negative_slope=0.05), L.Dense(3)])
    read = bc.from_keras(model)
    acts = [(n.params["name"], n.params.get("alpha")) for n in read.nodes if n.op == "activation"]
    assert acts == [("hardsigmoid", None), ("hardswish", None), ("mish", None), ("elu", 1.0), ("leaky_relu", 0.2),
                    ("leaky_relu", 0.3), ("elu", 0.5), ("leaky_relu", 0.05)]
    x = 3 * np.random.default_rng(37).standard_normal((130, 6)).astype(f32)
    h, dense = x[:4], iter([layer for layer in model.layers if isinstance(layer, L.Dense)])
    for name, alpha in acts[:5]:
        k, b = weights(next(dense))
        h = row_function(linear(h, k.T.copy(), b, "seq"), name, alpha=alpha)
    h = row_function(h, "leaky_relu", alpha=f32(0.3))
    k, b = weights(next(dense))
    h = row_function(row_function(linear(h, k.T.copy(), b, "seq"), "elu", alpha=0.5), "leaky_relu", alpha=f32(0.05))
    k, b = weights(next(dense))
    assert np.array_equal(bc.native().run(read, x[:4]).view(np.uint32), linear(h, k.T.copy(), b, "seq").view(np.uint32))
    np.testing.assert_allclose(bc.native().run(read, x), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)
    assert_batch_invariant(read, x)
