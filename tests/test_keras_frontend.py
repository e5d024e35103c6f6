"""Keras's frontend (batchcore/frontends/keras/): from_keras against a reference written here from the
layers' definitions and Keras's own weights, batch invariance of what it reads, what it refuses, and
how a Keras model is recognised."""

from __future__ import annotations

import numpy as np
import pytest

import batchcore as bc
from batchcore.frontends import frontend_of
from graph_reference import linear, row_function
from keras_models import assert_batch_invariant, import_keras
from reference import reference_dot


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def chain_model(keras):
    """Every layer from_keras reads, with batch statistics far from the identity."""
    keras.utils.set_random_seed(11)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((24,)), L.Dense(40, activation="gelu"), L.LayerNormalization(), L.Dense(32), L.BatchNormalization(),
        L.Activation("silu"), L.Dropout(0.3), L.Dense(32, activation="tanh"), L.ReLU(), L.Flatten(),
        L.Dense(7, activation="swish"), L.Dense(5), L.Softmax(),
    ], name="every_row_layer")
    rng = np.random.default_rng(12)
    bn = model.layers[3]
    bn.set_weights([rng.uniform(0.5, 2, 32), rng.standard_normal(32), rng.standard_normal(32) * 3,
                    rng.uniform(0.1, 4, 32)])
    ln = model.layers[1]
    ln.set_weights([rng.uniform(0.5, 2, 40), rng.standard_normal(40)])
    return model


def reference(keras, model, x):
    """The model's forward pass in batchcore's seq order, from the definitions and Keras's own weights:
    each Dense as dot products (bc.orders.dot, tested against exact rationals), each row function by
    layers.hpp's scalar definition, BatchNormalization folded as docs/models.md defines it."""
    act = {"gelu": "gelu", "silu": "silu", "swish": "silu", "tanh": "tanh", "relu": "relu", "softmax": "softmax"}
    h = x
    for layer in model.layers:
        name = type(layer).__name__
        w = [v.numpy() for v in layer.weights]
        if name == "Dense":
            h = linear(h, w[0].T.copy(), w[1], "seq")
        elif name == "LayerNormalization":
            h = row_function(h, "layer_norm", w[0], w[1], eps=layer.epsilon)
        elif name == "BatchNormalization":
            gamma, beta, mean, var = (np.float64(v) for v in w)
            scale = gamma / np.sqrt(var + layer.epsilon)
            h = row_function(h, "batch_norm", scale.astype(np.float32), (beta - mean * scale).astype(np.float32))
        elif name in ("ReLU", "Softmax"):
            h = row_function(h, name.lower())
        a = getattr(layer, "activation", None)
        if a is not None and keras.activations.serialize(a) in act:
            h = row_function(h, act[keras.activations.serialize(a)])
    return h


def test_from_keras_equals_the_reference_bit_for_bit_and_keras_closely(keras):
    model = chain_model(keras)
    read = bc.from_keras(model)
    assert read.describe() == ("24 -> linear 40 -> gelu -> layer_norm -> linear 32 -> batch_norm -> silu -> linear 32 -> "
                               "tanh -> relu -> linear 7 -> silu -> linear 5 -> softmax")
    x = np.random.default_rng(13).standard_normal((9, 24)).astype(np.float32)
    got = bc.native().run(read, x)
    assert np.array_equal(got.view(np.uint32), reference(keras, model, x).view(np.uint32))
    # the first Dense's dot products, sampled, against exact rational arithmetic step by step
    k, b = (v.numpy() for v in model.layers[0].weights)
    lone = keras.Sequential([keras.Input((24,)), keras.layers.Dense(40)])
    lone.set_weights([k, b])
    pre = bc.native().run(bc.from_keras(lone), x)
    for r, n in [(0, 0), (3, 17), (8, 39)]:
        assert pre[r, n] == np.float32(reference_dot(x[r], k[:, n], b[n], "seq"))
    # close to Keras: within a few float32 roundings of each layer
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), rtol=2e-5, atol=2e-6)


def test_what_from_keras_reads_is_batch_invariant(keras):
    x = np.random.default_rng(14).standard_normal((200, 24)).astype(np.float32)
    assert_batch_invariant(bc.from_keras(chain_model(keras)), x)


def test_torch_runs_a_chain_read_from_keras_as_the_same_layers(keras):
    pytest.importorskip("torch")
    model = chain_model(keras)
    x = np.random.default_rng(15).standard_normal((6, 24)).astype(np.float32)
    np.testing.assert_allclose(bc.torch(measure_memory=False).run(bc.from_keras(model), x),
                               np.asarray(model(x, training=False)), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("build, error, match", ids=["hard-sigmoid", "relu4", "lstm", "mixed", "unbuilt"],
                         argvalues=[
    (lambda k: k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softsign", name="gate")]),
     bc.UnsupportedLayerError, r"layer 'gate' \(Dense\): activation 'softsign' is not read"),
    (lambda k: k.Sequential([k.Input((4,)), k.layers.Dense(3), k.layers.ReLU(max_value=4.0, name="r4")]),
     bc.UnsupportedLayerError, r"layer 'r4' \(ReLU\): ReLU with a max_value other than 6"),
    (lambda k: k.Sequential([k.Input((5, 4)), k.layers.LSTM(3, name="memory")]),
     bc.UnsupportedLayerError, r"layer 'memory' \(LSTM\): it is not read; from_keras reads Dense, Conv1D"),
    (lambda k: k.Sequential([k.Input((4,)), k.layers.Dense(3, dtype="mixed_float16", name="half")]),
     bc.DTypeError, r"layer 0 'half' \(Dense\) computes in float16 \(policy mixed_float16\)"),
    (lambda k: k.Sequential([k.layers.Dense(3)], name="unbuilt"), bc.ArgumentError, r"unbuilt is not built"),
])
def test_from_keras_names_what_it_does_not_read(keras, build, error, match):
    with pytest.raises(error, match=match):
        bc.from_keras(build(keras))


def test_a_keras_model_is_claimed_by_the_keras_frontend_and_keras_2_is_named(keras):
    assert frontend_of(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])).name == "keras"
    assert frontend_of(lambda x: x).name == "torch"

    class Keras2Model:  # what a tf_keras (Keras 2) model looks like to the frontend
        __module__ = "tf_keras.src.engine.training"

        def __call__(self, x):
            return x

    with pytest.raises(bc.MissingDependencyError, match="Keras 2 object .* batchcore runs Keras 3 models"):
        bc.sweep(Keras2Model(), [1], data=np.ones((2, 2), np.float32), backends=[bc.native()], progress=False)
