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
        def loop(B):
            return torch.cat([net(x[i : i + B]) for i in range(0, len(x), B)]).numpy()

        y1 = loop(1)
        for s in study.data["settings"]:
            for p in s["points"]:
                y = loop(p["batch_size"])
                assert p["bitwise_equal_frac"] == (y.view(np.uint32) == y1.view(np.uint32)).mean()
            fingerprints = [tuple(loop(B).view(np.uint32).ravel()) for B in (1, 2, 8, 64)]
            groups = {}
            for B, f in zip((1, 2, 8, 64), fingerprints, strict=True):
                groups.setdefault(f, []).append(B)
            assert s["classes"] == list(groups.values())
    assert [s["setting"] for s in study.data["settings"]] == ["default", "use_deterministic_algorithms(True)"]


def test_a_keras_model_needs_its_data_as_one_array():
    from keras_models import import_keras, wide_mlp

    model = wide_mlp(import_keras(), width=8, hidden=8)
    with pytest.raises(bc.ArgumentError, match="one numpy array"):
        bc.studies.switches(model, [np.zeros((4, 8), np.float32)], progress=False)
    with pytest.raises(bc.DTypeError, match="float64"):
        bc.studies.switches(model, np.zeros((4, 8)), progress=False)
