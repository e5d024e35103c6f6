"""The switches study (batchcore/studies/switches.py): each setting really ran as named (the flags its
run recorded), and its figures equal a recomputation with the framework's own plain loop."""

from __future__ import annotations

import numpy as np
import pytest

import batchcore as bc


@pytest.mark.slow  # four fresh interpreters, each importing TensorFlow
def test_each_keras_setting_runs_as_named_and_the_default_agrees_with_keras_own_predict():
    from tensorflow.python.util import _pywrap_util_port

    from keras_models import import_keras, plain_loop, wide_mlp

    keras = import_keras()
    model = wide_mlp(keras, seed=3, width=128, hidden=256)
    x = np.random.default_rng(4).standard_normal((64, 128)).astype(np.float32)
    study = bc.studies.switches(model, x, batch_sizes=[1, 2, 8], progress=False)
    found = {s["setting"]: s for s in study.data["settings"]}
    assert list(found) == ["oneDNN on (TensorFlow's default)", "oneDNN on + op determinism", "oneDNN off",
                           "oneDNN off + op determinism"]
    for name, s in found.items():
        assert s["backend_settings"]["onednn"] == ("oneDNN on" in name), name
        assert s["backend_settings"]["op_determinism"] == ("op determinism" in name), name
        assert [p["batch_size"] for p in s["points"]] == [1, 2, 8]
    if bool(_pywrap_util_port.IsMklEnabled()):  # this process runs as the default setting: recompute it here
        y1 = plain_loop(model, x, 1, "predict")
        for p in found["oneDNN on (TensorFlow's default)"]["points"]:
            y = plain_loop(model, x, p["batch_size"], "predict")
            assert p["bitwise_equal_frac"] == (y.view(np.uint32) == y1.view(np.uint32)).mean()
    assert study.verdict.split(":")[0] in ("No setting of the switches makes the outputs batch invariant",
                                           "Every setting gives the same bits at every batch size") or \
        study.verdict.startswith("Only ")


def test_each_torch_setting_agrees_with_a_plain_loop_and_the_flag_is_restored():
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(128, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    x = torch.randn(64, 128)
    before = torch.are_deterministic_algorithms_enabled()
    study = bc.studies.switches(net, x, batch_sizes=[1, 2, 8, 64], progress=False)
    assert torch.are_deterministic_algorithms_enabled() == before
    with torch.no_grad():
        for s in study.data["settings"]:
            agrees_with_loop(s, lambda B: torch.cat([net(x[i : i + B]) for i in range(0, len(x), B)]).numpy())
    assert [s["setting"] for s in study.data["settings"]] == ["default", "use_deterministic_algorithms(True)"]


def agrees_with_loop(setting, loop, sizes=(1, 2, 8, 64)):
    """A setting's points and classes equal what the framework's own plain loop over batches of B gives."""
    per_b = {B: loop(B) for B in sizes}
    for p in setting["points"]:
        y = per_b[p["batch_size"]]
        assert p["bitwise_equal_frac"] == (y.view(np.uint32) == per_b[1].view(np.uint32)).mean(), setting["setting"]
    groups = {}
    for B in sizes:
        groups.setdefault(per_b[B].tobytes(), []).append(B)
    assert setting["classes"] == list(groups.values()), setting["setting"]


def test_each_onnx_runtime_setting_runs_as_named_and_agrees_with_its_own_plain_loop(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(96, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    x = np.random.default_rng(7).standard_normal((64, 96)).astype(np.float32)
    path = bc.export_onnx(net, x[:4], tmp_path / "mlp.onnx")
    study = bc.studies.switches(path, x, batch_sizes=[1, 2, 8, 64], progress=False)
    assert [s["setting"] for s in study.data["settings"]] == [name for name, _ in bc.studies.switches_settings("onnx")]
    for s in study.data["settings"]:
        recorded = s["backend_settings"]
        off, deterministic = "optimizations off" in s["setting"], "use_deterministic_compute" in s["setting"]
        assert recorded["graph_optimization"] == ("disabled" if off else "all")
        assert recorded["use_deterministic_compute"] == deterministic
        options = ort.SessionOptions()
        options.use_deterministic_compute = deterministic
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, "ORT_DISABLE_ALL" if off else "ORT_ENABLE_ALL")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        agrees_with_loop(s, lambda B, session=session: np.concatenate(
            [session.run(None, {session.get_inputs()[0].name: x[i:i + B]})[0] for i in range(0, len(x), B)]))


def tanh_mlp(params, x):
    """A JAX model the study sends to its spawned processes by pickle (a function at a module's top level)."""
    import jax.numpy as jnp

    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"]


def test_each_xla_setting_runs_in_its_own_process_with_its_flags(monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # this process's JAX runs as the default setting
    rng = np.random.default_rng(8)
    params = {"w1": (rng.standard_normal((64, 128)) / 8).astype(np.float32), "b1": np.zeros(128, np.float32),
              "w2": (rng.standard_normal((128, 10)) / 11).astype(np.float32)}
    x = rng.standard_normal((64, 64)).astype(np.float32)
    study = bc.studies.switches(bc.jax_model(tanh_mlp, params), x, batch_sizes=[1, 2, 8, 64], progress=False)
    import os

    assert "XLA_FLAGS" not in os.environ  # restored
    settings = study.data["settings"]
    assert [(s["setting"], s["backend_settings"]["xla_flags"]) for s in settings] == \
        [(name, flags) for name, flags in bc.studies.switches_settings("jax")]
    if os.environ.get("JAX_PLATFORMS", "cpu") == "cpu" and not jax.config.jax_enable_x64:
        f = jax.jit(tanh_mlp)
        agrees_with_loop(settings[0], lambda B: np.concatenate(
            [np.asarray(f(params, jax.numpy.asarray(x[i:i + B]))) for i in range(0, len(x), B)]))
    with pytest.raises(bc.ArgumentError, match="by pickle: fn must be a function defined at a module's top level"):
        bc.studies.switches(bc.jax_model(lambda p, v: v @ p["w1"], params), x, progress=False)


def test_a_keras_model_needs_its_data_as_one_array():
    from keras_models import import_keras, wide_mlp

    model = wide_mlp(import_keras(), width=8, hidden=8)
    with pytest.raises(bc.ArgumentError, match="one numpy array"):
        bc.studies.switches(model, [np.zeros((4, 8), np.float32)], progress=False)
    with pytest.raises(bc.DTypeError, match="float64"):
        bc.studies.switches(model, np.zeros((4, 8)), progress=False)
