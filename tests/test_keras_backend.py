"""The Keras backend (batchcore/backends/keras_backend.py): its figures against a recomputation with
Keras's own plain loop, its records, and the inputs it refuses."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import batchcore as bc
from keras_models import import_keras, max_ulp, plain_loop, wide_mlp

QUICK = bc.Timer(min_time_s=0, timeout_s=0.2, target=0.5)
SIZES = [1, 2, 7, 64]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((96, 256)).astype(np.float32), rng.integers(0, 10, 96)


def check_against_plain_loop(model, x, labels, points):
    """Every Keras point's bits-equal fraction, max ULP to B=1, argmax flips and accuracy, recomputed from
    Keras's own outputs (predict, or direct calls) with numpy."""
    checked = 0
    for p in points:
        if not p["backend"].startswith("keras["):
            continue
        mode = p["backend"][6:-1]
        y1, y = plain_loop(model, x, 1, mode), plain_loop(model, x, p["batch_size"], mode)
        assert p["bitwise_equal_frac"] == pytest.approx((y.view(np.uint32) == y1.view(np.uint32)).mean(), abs=0)
        assert p["max_ulp_vs_b1"] == max_ulp(y, y1)
        assert p["argmax_changed"] == int((y.argmax(1) != y1.argmax(1)).sum())
        assert p["accuracy"] == pytest.approx(float((y.argmax(1) == labels).mean()), abs=0)
        assert p["first_call_ms"] > 0 and p["memory_method"].startswith("not measured (Keras on the CPU")
        checked += 1
    return checked


def test_a_read_keras_model_gives_keras_own_figures_beside_the_native_core(keras, data):
    x, labels = data
    model = wide_mlp(keras)
    res = bc.sweep(model, SIZES, backends=[bc.keras(), bc.keras(mode="call"), bc.native()], data=x, labels=labels,
                   timer=QUICK, rounds=1, ceilings=False, progress=False)
    assert res.config["model"].startswith("256 -> linear 512 -> relu")  # read: the exact reference is known
    assert check_against_plain_loop(model, x, labels, res.points) == 2 * len(SIZES)
    assert all(p["max_ulp_vs_exact"] is not None for p in res.points)
    native = [p for p in res.points if p["backend"] == "native[seq]"]
    assert all(p["bitwise_equal_frac"] == 1 for p in native)


def test_a_keras_model_run_as_it_is_gives_keras_own_figures(keras, data):
    x, labels = data
    model = wide_mlp(keras, seed=1)
    res = bc.sweep(model, SIZES, backends=[bc.keras(), bc.keras(mode="call")], data=x, labels=labels, timer=QUICK,
                   rounds=1, progress=False)
    assert res.config["model"]["framework"] == "keras" and res.config["model"]["keras_backend"] == "tensorflow"
    assert check_against_plain_loop(model, x, labels, res.points) == 2 * len(SIZES)


def test_several_inputs_dict_outputs_and_mixed_precision_are_compared_in_their_own_formats(keras):
    """A functional model of two inputs (one of token ids) and two named outputs, one float16 from a
    mixed-precision layer: each output keeps its format, and its ULPs are float16's."""
    keras.utils.set_random_seed(2)
    ids, feats = keras.Input((6,), dtype="int32", name="ids"), keras.Input((12,), name="feats")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8)(ids))
    h = keras.layers.Concatenate()([pooled, feats])
    half = keras.layers.Dense(300, activation="relu", dtype="mixed_float16")(h)
    model = keras.Model({"ids": ids, "feats": feats},
                        {"scores": keras.layers.Dense(5, dtype="mixed_float16")(half),
                         "probs": keras.layers.Dense(3, activation="softmax")(h)})
    rng = np.random.default_rng(4)
    data = {"ids": rng.integers(0, 50, (40, 6)).astype(np.int32), "feats": rng.standard_normal((40, 12)).astype(np.float32)}
    res = bc.sweep(model, [1, 3, 40], backends=[bc.keras(mode="call")], data=data, timer=QUICK, rounds=1,
                   progress=False)
    formats = {o["name"]: o["format"] for o in res.points[0]["outputs"]}
    assert formats == {"output['scores']": "fp16", "output['probs']": "fp32"}
    for p in res.points:
        B = p["batch_size"]
        got = [model({k: v[i : i + B] for k, v in data.items()}, training=False) for i in range(0, 40, B)]
        ref = [model({k: v[i : i + 1] for k, v in data.items()}, training=False) for i in range(40)]
        both = {k: (np.concatenate([np.asarray(g[k]) for g in got]), np.concatenate([np.asarray(r[k]) for r in ref]))
                for k in ("scores", "probs")}
        assert both["scores"][0].dtype == np.float16
        assert p["max_ulp_vs_b1"] == max(max_ulp(a, b) for a, b in both.values())


def test_the_backend_records_what_changes_keras_bits_and_travels_by_its_settings(keras):
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    backend = bc.keras(mode="call")
    s = backend.settings()
    assert s["keras_backend"] == "tensorflow" and s["tensorflow_version"] == tf.__version__
    assert s["op_determinism"] == tf_config.is_op_determinism_enabled() and s["mode"] == "call"
    assert isinstance(s["onednn"], bool) and s["keras_version"] == keras.__version__
    again = pickle.loads(pickle.dumps(backend))
    assert again.label == "keras[call]" and again.settings()["mode"] == "call"


def test_keras_refuses_what_it_cannot_run_and_bad_input_names_the_problem(keras, data):
    x, _ = data
    model = wide_mlp(keras, seed=5)
    with pytest.raises(bc.ArgumentError, match="mode must be one of predict, call"):
        bc.keras(mode="fit")
    with pytest.raises(bc.ArgumentError, match="keras.predict. runs Keras models; .* was not read from one"):
        bc.sweep(bc.mlp([256, 4]), [1], backends=[bc.keras()], timer=QUICK, progress=False)
    with pytest.raises(bc.DTypeError, match=r"data is float64 but wide_mlp takes float32; .*astype\('float32'\)"):
        bc.sweep(model, [1], backends=[bc.keras()], data=x.astype(np.float64), timer=QUICK, progress=False)
    bad = x.copy()
    bad[5, 7] = np.nan
    with pytest.raises(bc.NonFiniteError):
        bc.sweep(model, [1], backends=[bc.keras()], data=bad, timer=QUICK, progress=False)
    with pytest.raises(bc.ArgumentError, match="a Keras Dense layer, not a model"):
        bc.sweep(keras.layers.Dense(3), [1], backends=[bc.keras()], data=x, timer=QUICK, progress=False)
    with pytest.raises(bc.ModuleError, match="raised .* on 2 rows"):
        bc.keras(mode="call").run_module(bc.frontends.keras.KerasModule(model), x[:, :10], 2)


KERAS_ON_TORCH = """
import numpy as np, keras, batchcore as bc
assert keras.config.backend() == "torch"
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)])
x = np.random.default_rng(0).standard_normal((48, 32)).astype(np.float32)
res = bc.sweep(model, [1, 5, 48], data=x, backends=[bc.keras(mode="call")], progress=False, rounds=1,
               timer=bc.Timer(min_time_s=0, timeout_s=0.1, target=0.5))
y1 = np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + 1])) for i in range(48)])
for p in res.points:
    B = p["batch_size"]
    y = np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + B])) for i in range(0, 48, B)])
    assert p["backend"] == "keras[call,torch]" and p["bitwise_equal_frac"] == (y.view(np.uint32) == y1.view(np.uint32)).mean()
s = res.points[0]["settings"] if "settings" in res.points[0] else bc.keras(mode="call").settings()
assert s["keras_backend"] == "torch" and s["torch_version"].startswith("2.13"), s
print("ok")
"""


@pytest.mark.slow  # a fresh interpreter with Keras configured on torch
def test_keras_on_torch_runs_and_records_its_backend(tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, "-c", KERAS_ON_TORCH], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": ""})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_a_bfloat16_output_is_compared_in_bfloat16(keras):
    keras.utils.set_random_seed(10)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu", dtype="mixed_bfloat16"),
                              keras.layers.Dense(8, dtype="mixed_bfloat16")])
    x = np.random.default_rng(11).standard_normal((40, 64)).astype(np.float32)
    res = bc.sweep(model, [1, 4, 40], backends=[bc.keras()], data=x, timer=QUICK, rounds=1, progress=False)
    assert res.points[0]["outputs"] == [{"name": "output", "format": "bf16", "shape": [40, 8]}]
    y1 = plain_loop(model, x, 1, "predict")
    assert y1.dtype.name == "bfloat16"
    for p in res.points:
        y = plain_loop(model, x, p["batch_size"], "predict")
        assert p["max_ulp_vs_b1"] == max_ulp(y, y1)  # ULPs of bfloat16, counted on its own 16 bits
        assert p["bitwise_equal_frac"] == (y.view(np.uint16) == y1.view(np.uint16)).mean()
