"""ONNX Runtime as a backend: models exported from torch by bc.export_onnx and one built with onnx's helper,
swept with bc.onnx(); every figure recomputed here with ONNX Runtime's own plain loop (a session of the
test's own, session.run per batch); the files a user hands in checked (damaged, fixed batch axis)."""

import pickle

import numpy as np
import pytest

import batchcore as bc
from point_checks import check_point

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
SIZES = [1, 3, 8, 40]


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(96, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()


def cnn():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10)).eval()


def plain_loop(path, x, B, **options):
    o = ort.SessionOptions()
    for k, v in options.items():
        setattr(o, k, v)
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + B]})[0] for i in range(0, len(x), B)])


@pytest.mark.parametrize("make, shape", [(mlp, (96,)), (cnn, (1, 8, 8))])
@pytest.mark.parametrize("switches", [{}, {"deterministic": True, "optimization": "basic"}])
def test_a_sweep_on_onnx_runtime_equals_its_own_plain_loop(tmp_path, make, shape, switches):
    x = np.random.default_rng(2).standard_normal((40, *shape)).astype(np.float32)
    labels = np.random.default_rng(3).integers(0, 10, 40)
    path = bc.export_onnx(make(), x[:4], tmp_path / "model.onnx")
    backend = bc.onnx(threads=2, **switches)
    res = bc.sweep(path, data=x, labels=labels, batch_sizes=SIZES, backends=[backend], timer=FAST, rounds=1,
                   progress=False)
    level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}
    options = {"intra_op_num_threads": 2, "inter_op_num_threads": 1,
               "graph_optimization_level": level[switches.get("optimization", "all")],
               "use_deterministic_compute": switches.get("deterministic", False)}
    per_b = {B: plain_loop(path, x, B, **options) for B in SIZES}
    for p in res.points:
        got, b1 = per_b[p["batch_size"]], per_b[1]
        assert [(o["format"], o["shape"]) for o in p["outputs"]] == [("fp32", [40, 10])]
        check_point(p, got, b1, labels)
        assert p["first_call_ms"] > 0 and "no peak counter" in p["memory_method"]
        settings = p["settings"]
        assert (settings["threads"], settings["inter_op_threads"]) == (2, 1)
        assert settings["graph_optimization"] == switches.get("optimization", "all")
        assert settings["use_deterministic_compute"] == switches.get("deterministic", False)
        assert settings["onnxruntime_version"] == ort.__version__
    with torch.no_grad():
        want = make()(torch.from_numpy(x)).numpy()
    assert np.abs(per_b[1] - want).max() < 1e-4  # the export computes the module


def test_a_backend_travels_by_its_settings():
    b = bc.onnx(threads=1, optimization="extended", deterministic=True)
    again = pickle.loads(pickle.dumps(b))
    assert again.label == b.label == "onnx[cpu,opt=extended,deterministic]"
    assert again.settings() == b.settings()


def two_in_two_out(path, batch="batch"):
    """A graph built by hand: y = a @ W + 1 (float32), and the int64 ids passed through."""
    h = onnx.helper
    w = h.make_tensor("W", onnx.TensorProto.FLOAT, [3, 2], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    one = h.make_tensor("one", onnx.TensorProto.FLOAT, [], [1.0])
    graph = h.make_graph(
        [h.make_node("MatMul", ["a", "W"], ["m"]), h.make_node("Add", ["m", "one"], ["y"]),
         h.make_node("Identity", ["ids"], ["ids_out"])], "two",
        [h.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [batch, 3]),
         h.make_tensor_value_info("ids", onnx.TensorProto.INT64, [batch, 2])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [batch, 2]),
         h.make_tensor_value_info("ids_out", onnx.TensorProto.INT64, [batch, 2])], [w, one])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return model


def test_inputs_by_name_or_in_order_and_every_output_in_its_own_format(tmp_path):
    model = two_in_two_out(tmp_path / "two.onnx")
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.arange(8, dtype=np.int64).reshape(4, 2)
    for data in ({"ids": ids, "a": a}, [a, ids]):
        for m in (model, tmp_path / "two.onnx"):
            res = bc.sweep(m, data=data, batch_sizes=[1, 3], backends=[bc.onnx()], timer=FAST, rounds=1, progress=False)
            assert [o["name"] for o in res.points[0]["outputs"]] == ["y", "ids_out"]
            assert [o["format"] for o in res.points[0]["outputs"]] == ["fp32", "int64"]
    got = bc.onnx().run_module(bc.frontends.onnx.OnnxModule(model), [a, ids], 3)
    assert got[0].values.tobytes() == (a @ np.arange(1, 7, dtype=np.float32).reshape(3, 2) + 1).tobytes()
    assert np.array_equal(got[1].values, ids)


@pytest.mark.parametrize("data, error, pattern", [
    (lambda a, ids: [a.astype(np.float64), ids], bc.DTypeError, r"data\[0\] is float64 but two takes float32"),
    (lambda a, ids: [a, ids.astype(np.int32)], bc.DTypeError, r"data\[1\] is int32 but two takes int64"),
    (lambda a, ids: [a], bc.ShapeError, r"takes 2 input\(s\) \(a, ids\); data has 1"),
    (lambda a, ids: {"a": a, "idz": ids}, bc.ShapeError, "no input named 'idz'"),
    (lambda a, ids: [np.where(a > 0, np.nan, a), ids], bc.NonFiniteError, "NaN"),
    (lambda a, ids: [a, ids[:3]], bc.ShapeError, "first dimensions differ"),
])
def test_bad_data_names_the_problem(tmp_path, data, error, pattern):
    two_in_two_out(tmp_path / "two.onnx")
    a, ids = np.ones((4, 3), np.float32), np.zeros((4, 2), np.int64)
    with pytest.raises(error, match=pattern):
        bc.sweep(tmp_path / "two.onnx", data=data(a, ids), batch_sizes=[1], backends=[bc.onnx()], timer=FAST,
                 progress=False)


def test_files_that_cannot_run_at_every_batch_size_are_refused(tmp_path):
    two_in_two_out(tmp_path / "fixed.onnx", batch=4)
    with pytest.raises(bc.ShapeError, match="input 'a' has a fixed batch dimension of 4"):
        bc.sweep(tmp_path / "fixed.onnx", data=[np.ones((4, 3), np.float32), np.zeros((4, 2), np.int64)],
                 backends=[bc.onnx()], batch_sizes=[1], progress=False)
    good = (tmp_path / "fixed.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.onnx").write_text("not a model")
    for name in ("cut.onnx", "text.onnx"):
        with pytest.raises(bc.ArgumentError, match=f"{name} (is not an ONNX model|does not pass onnx's checker)"):
            bc.sweep(tmp_path / name, data=np.ones((4, 3), np.float32), backends=[bc.onnx()], progress=False)
    with pytest.raises(bc.ArgumentError, match="cannot read the ONNX model"):
        bc.sweep(tmp_path / "absent.onnx", data=np.ones((4, 3), np.float32), backends=[bc.onnx()], progress=False)


def test_other_backends_say_why_they_do_not_run_an_onnx_model(tmp_path):
    two_in_two_out(tmp_path / "two.onnx")
    data = [np.ones((4, 3), np.float32), np.zeros((4, 2), np.int64)]
    with pytest.raises(bc.ArgumentError, match="native.*bc.from_onnx reads a module with one input array, and the "
                                               "data is a list"):
        bc.sweep(tmp_path / "two.onnx", data=data, backends=[bc.onnx(), bc.native()], progress=False)
    with pytest.raises(bc.ArgumentError, match="bc.export_onnx"):
        bc.onnx().run(bc.mlp([4, 2], seed=0), np.ones((1, 4), np.float32))


class Branchy(torch.nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


class FixedBatch(torch.nn.Module):
    def forward(self, x):
        return x.reshape(4, -1) * 2


@pytest.mark.parametrize("module, error, pattern", [
    (Branchy(), bc.UnsupportedLayerError, "torch.onnx.export could not export Branchy"),
    (FixedBatch(), (bc.UnsupportedLayerError, bc.ShapeError), "FixedBatch"),
])
def test_export_refusals_leave_no_file(tmp_path, module, error, pattern):
    with pytest.raises(error, match=pattern):
        bc.export_onnx(module, torch.randn(4, 3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_checks_its_arguments(tmp_path):
    with pytest.raises(bc.ArgumentError, match="must end in .onnx"):
        bc.export_onnx(mlp(), torch.randn(2, 96), tmp_path / "m.pt")
    with pytest.raises(bc.ArgumentError, match="is not a directory"):
        bc.export_onnx(mlp(), torch.randn(2, 96), tmp_path / "absent" / "m.onnx")
    path = bc.export_onnx(mlp(), np.ones((1, 96), np.float32), tmp_path / "one_row.onnx")  # a single row is enough
    assert bc.frontends.onnx.OnnxModule(path).input_shapes == [(96,)]
