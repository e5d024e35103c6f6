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
        w = np.random.default_rng(seed).standard_normal((n, k)) / np.sqrt(k)
        self.weight = nn.Parameter(torch.from_numpy(w.astype(np.float32)))

    def forward(self, x):
        return (x.double() @ self.weight.double().T).float()


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
    with pytest.raises(bc.ArgumentError, match="traces torch modules, Keras models, ONNX models and batchcore models"):
        bc.trace(object(), x, 2)
    with pytest.raises(bc.ArgumentError, match="traced on torch"):
        bc.trace(planted(), x, 2, backend=bc.native())


def last_layer_agrees(found, alone, inside, row):
    """The trace's last entry against the framework's own two runs, recomputed here."""
    a, b = np.ascontiguousarray(alone[0]), np.ascontiguousarray(inside[row])
    assert found.layers[-1]["bits_equal_frac"] == float((a.view(np.uint32) == b.view(np.uint32)).mean())


def test_an_onnx_model_is_traced_node_by_node(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 7)).eval()
    x = np.random.default_rng(9).standard_normal((16, 64)).astype(np.float32)
    path = bc.export_onnx(net, x[:2], tmp_path / "mlp.onnx")
    found = bc.trace(path, x, 16, row=11)
    assert found.backend == "onnx[cpu,opt=disabled]" and [e["kind"] for e in found.layers] == ["Gemm", "Relu", "Gemm"]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    run = lambda rows: session.run(None, {session.get_inputs()[0].name: rows})[0]  # noqa: E731
    last_layer_agrees(found, run(x[11:12]), run(x), 11)


def test_a_keras_model_is_traced_layer_by_layer():
    from keras_models import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(10)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(96, activation="relu", name="hidden"),
                              keras.layers.Dense(7, name="head")])
    x = np.random.default_rng(11).standard_normal((16, 64)).astype(np.float32)
    found = bc.trace(model, x, 16, row=3)
    assert found.backend == "keras" and [e["layer"] for e in found.layers] == ["hidden", "head"]
    last_layer_agrees(found, np.asarray(model(x[3:4], training=False)), np.asarray(model(x, training=False)), 3)


QUICK = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)


def test_a_sweeps_result_traces_what_each_of_its_backends_ran(tmp_path):
    x = np.random.default_rng(3).standard_normal((8, 12)).astype(np.float32)
    res = bc.sweep(planted(), [1, 8], backends=[bc.torch(measure_memory=False)], data=x, timer=QUICK, rounds=1,
                   progress=False, out=tmp_path / "run.jsonl")
    found = res.trace("torch[cpu]", 8, row=5)
    assert found.first_differing == "2" and found.layers[2]["kind"] == "Switched"
    net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    read = bc.sweep(net, [1, 8], backends=[bc.torch(measure_memory=False), bc.native(), bc.numpy()], data=x,
                    timer=QUICK, rounds=1, progress=False, ceilings=False)
    native = read.trace(bc.native(), 8, row=3)
    assert native.first_differing is None and len(native.layers) == 3
    assert [e["layer"] for e in read.trace("torch[cpu]", 8).layers] == ["0", "1", "2"]  # the module's own paths
    with pytest.raises(bc.ArgumentError, match="numpy.*cannot be traced"):
        read.trace("numpy", 8)
    with pytest.raises(bc.ArgumentError, match="'jax' is not a backend of this sweep; its backends: torch"):
        read.trace("jax", 8)
    with pytest.raises(bc.ArgumentError, match="read from a file"):
        bc.SweepResult.from_json(tmp_path / "run.jsonl").trace("torch[cpu]", 8)
