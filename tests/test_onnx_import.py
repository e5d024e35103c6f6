"""bc.from_onnx: ONNX graphs (exported from torch, and built by hand) read into the native core: bit for bit
against the definitions (tests/graph_reference.py), the same bits at every batch size, close to ONNX
Runtime; refusals name the node, its operator and the exporting code's line."""

import numpy as np
import pytest

import batchcore as bc
import graph_reference as ref
from point_checks import assert_as_close_as_orders_allow

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
nn = torch.nn


class Residual(nn.Module):
    """Ops beyond a chain: a residual sum, a layer norm, GELU, a softmax, a slice and a mean."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.norm = nn.Linear(12, 12), nn.Linear(6, 4), nn.LayerNorm(12)

    def forward(self, x):
        h = self.norm(x + nn.functional.gelu(self.a(x)))
        return torch.softmax(self.b(h[:, :, 3:9]), dim=-1).mean(1)


class EncoderBlock(nn.Module):
    """torch's encoder layer: its exported attention goes sequence-first and merges the batch with the heads."""

    def __init__(self):
        super().__init__()
        self.block = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=12, batch_first=True,
                                                activation="gelu")
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(1))


def models():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 6, 3, stride=2, padding=1, groups=2), nn.ReLU6(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Linear(6, 10))
    cnn[1].running_mean.uniform_(-0.5, 0.5)
    cnn[1].running_var.uniform_(0.5, 2.0)
    mlp = nn.Sequential(nn.Linear(40, 64), nn.Tanh(), nn.Linear(64, 64), nn.Sigmoid(), nn.Linear(64, 5),
                        nn.LogSoftmax(dim=1))
    audio = nn.Sequential(nn.Conv1d(2, 6, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(6, 4, 3, dilation=2),
                          nn.AvgPool1d(2), nn.Flatten(), nn.Linear(4 * 4, 3))
    decoder = nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                            nn.Upsample(scale_factor=2), nn.ConvTranspose2d(4, 2, 2, stride=2, groups=2, dilation=2),
                            nn.Flatten(), nn.Linear(2 * 41 * 49, 3))
    gates = nn.Sequential(nn.Linear(10, 16), nn.Hardswish(), nn.Linear(16, 16), nn.Mish(), nn.LeakyReLU(0.1),
                          nn.Linear(16, 16), nn.ELU(0.7), nn.Hardsigmoid(), nn.Linear(16, 4))
    return {"cnn": (cnn.eval(), (1, 8, 8)), "mlp": (mlp.eval(), (40,)), "residual": (Residual().eval(), (5, 12)),
            "audio": (audio.eval(), (2, 24)), "activations": (gates.eval(), (10,)),
            "transformer": (EncoderBlock().eval(), (5, 8)), "decoder": (decoder.eval(), (3, 5, 6))}


@pytest.fixture(scope="module", params=["activations", "audio", "cnn", "decoder", "mlp", "residual", "transformer"])
def exported(request, tmp_path_factory):
    module, shape = models()[request.param]
    x = np.random.default_rng(1).standard_normal((24, *shape)).astype(np.float32)
    path = bc.export_onnx(module, x[:2], tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return path, x


def test_read_graph_equals_the_definitions_and_is_batch_invariant(exported):
    path, x = exported
    graph = bc.from_onnx(path)
    got = bc.native().run(graph, x)
    assert got[:3].tobytes() == ref.run(graph, x[:3]).tobytes()
    alone = np.concatenate([bc.native().run(graph, x[i:i + 1]) for i in range(len(x))])
    assert got.tobytes() == alone.tobytes()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    exact = bc.native(order="exact").run(graph, x)
    assert_as_close_as_orders_allow(got, want, exact)


def test_a_sweep_reads_the_file_for_the_native_core_and_runs_it_on_onnx_runtime(exported):
    path, x = exported
    res = bc.sweep(path, data=x, batch_sizes=[1, 5, 24], backends=[bc.onnx(threads=1), bc.native(threads=1)],
                   timer=bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5), rounds=1,
                   progress=False)
    native = [p for p in res.points if p["backend"] == "native[seq]"]
    assert [p["bitwise_equal_frac"] for p in native] == [1.0, 1.0, 1.0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for p in res.points:
        if p["backend"].startswith("onnx"):
            b = p["batch_size"]
            plain = np.concatenate([session.run(None, {name: x[i:i + b]})[0] for i in range(0, len(x), b)])
            b1 = np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
            assert p["bitwise_equal_frac"] == float((plain.view(np.int32) == b1.view(np.int32)).mean())


def hand_built(nodes, inputs, outputs, initializers=()):
    h = onnx.helper
    model = h.make_model(h.make_graph(nodes, "hand", inputs, outputs, list(initializers)),
                         opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_token_ids_through_a_gather_table_and_a_symbolic_length(tmp_path):
    h, T = onnx.helper, onnx.TensorProto
    table = np.random.default_rng(2).standard_normal((20, 6)).astype(np.float32)
    model = hand_built([h.make_node("Gather", ["table", "ids"], ["e"]), h.make_node("ReduceSum", ["e", "axis"], ["s"],
                                                                                    keepdims=0)],
                       [h.make_tensor_value_info("ids", T.INT64, ["batch", "length"])],
                       [h.make_tensor_value_info("s", T.FLOAT, ["batch", 6])],
                       [onnx.numpy_helper.from_array(table, "table"), onnx.numpy_helper.from_array(np.array([1]), "axis")])
    with pytest.raises(bc.ShapeError, match=r"symbolic sample dimensions \('length',\): pass input_shape="):
        bc.from_onnx(model)
    graph = bc.from_onnx(model, input_shape=(4,))
    ids = np.random.default_rng(3).integers(0, 20, (5, 4))
    want = table[ids[:, 0]]
    for i in range(1, 4):
        want = (want + table[ids[:, i]]).astype(np.float32)
    assert bc.native().run(graph, ids).tobytes() == want.tobytes()


def test_refusals_name_the_node_the_operator_and_the_line(tmp_path):
    class Erf(nn.Module):
        def forward(self, x):
            return torch.erf(x) * 2

    path = bc.export_onnx(Erf(), torch.randn(2, 3), tmp_path / "erf.onnx")
    with pytest.raises(bc.UnsupportedLayerError, match=r"\(Erf\) at .*test_onnx_import.py.*line \d+, in forward "
                                                       r"\(return torch.erf\(x\) \* 2\): Erf is not supported"):
        bc.from_onnx(path)

    class MixesSamples(nn.Module):
        def forward(self, x):
            return x - x.mean(0)

    path = bc.export_onnx(MixesSamples(), torch.randn(4, 3), tmp_path / "mix.onnx")
    with pytest.raises(bc.UnsupportedLayerError, match="does not keep the samples apart along one dimension"):
        bc.from_onnx(path)
    h, T = onnx.helper, onnx.TensorProto
    two = hand_built([h.make_node("Add", ["a", "b"], ["y"])],
                     [h.make_tensor_value_info(n, T.FLOAT, ["batch", 3]) for n in "ab"],
                     [h.make_tensor_value_info("y", T.FLOAT, ["batch", 3])])
    with pytest.raises(bc.UnsupportedLayerError, match=r"takes 2 inputs \(a, b\)"):
        bc.from_onnx(two)
    uneven = hand_built([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1])],
                        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 1, 4, 4])],
                        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 1, 4, 4])])
    with pytest.raises(bc.UnsupportedLayerError, match=r"pads \[0, 0, 1, 1\] are uneven"):
        bc.from_onnx(uneven)


def test_a_batch_norm_a_global_pool_and_a_gemm_built_by_hand(tmp_path):
    """Operators torch's exporter folds away or writes otherwise: read as written, checked against the
    definitions and ONNX Runtime."""
    h, T, rng = onnx.helper, onnx.TensorProto, np.random.default_rng(4)
    arrays = {"scale": rng.uniform(0.5, 2, 3), "bias": rng.standard_normal(3), "mean": rng.standard_normal(3),
              "var": rng.uniform(0.5, 2, 3), "w": rng.standard_normal((4, 3)), "c": rng.standard_normal(4)}
    model = hand_built([h.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["n"], epsilon=1e-3),
                        h.make_node("GlobalAveragePool", ["n"], ["p"]), h.make_node("Flatten", ["p"], ["f"]),
                        h.make_node("Gemm", ["f", "w", "c"], ["y"], transB=1)],
                       [h.make_tensor_value_info("x", T.FLOAT, ["batch", 3, 5, 5])],
                       [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
                       [onnx.numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()])
    graph = bc.from_onnx(model)
    assert [n.op for n in graph.nodes] == ["input", "channel_affine", "adaptive_avg_pool2d", "reshape", "linear"]
    x = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    got = bc.native().run(graph, x)
    assert got.tobytes() == ref.run(graph, x).tobytes()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.abs(got - session.run(None, {"x": x})[0]).max() < 1e-5


def sequence_first(nodes, out_shape, initializers):
    """A hand-built graph over x (batch, 4, 6) with ``nodes`` between "x" and "y"."""
    h, T = onnx.helper, onnx.TensorProto
    return hand_built(nodes, [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4, 6])],
                      [h.make_tensor_value_info("y", T.FLOAT, out_shape)],
                      [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in initializers.items()])


def test_a_batch_merged_as_the_inner_factor_is_read_per_sample():
    """(B, 4, 6) -> (4, B, 6) -> (4 B, 6), a Gemm, and back: the batch is the inner factor of the merged rows;
    each sample's rows go through the same linear layer, bit for bit as the definition."""
    h, rng = onnx.helper, np.random.default_rng(8)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    model = sequence_first([h.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                            h.make_node("Reshape", ["t", "flat"], ["f"]), h.make_node("MatMul", ["f", "w"], ["m"]),
                            h.make_node("Reshape", ["m", "back"], ["b"]), h.make_node("Transpose", ["b"], ["y"],
                                                                                       perm=[1, 0, 2])],
                           ["batch", 4, 5], {"w": w, "flat": np.array([-1, 6]), "back": np.array([4, -1, 5])})
    graph = bc.from_onnx(model)
    x = rng.standard_normal((7, 4, 6)).astype(np.float32)
    got = bc.native().run(graph, x)
    assert got.tobytes() == ref.linear(x, np.ascontiguousarray(w.T), None, "seq").tobytes()
    assert got.tobytes() == np.concatenate([bc.native().run(graph, x[i:i + 1]) for i in range(7)]).tobytes()


@pytest.mark.parametrize("nodes, out_shape, pattern", [
    # (B, 4, 6) read as (4, B, 6) without a transpose: rows of other samples end up together
    (lambda h: [h.make_node("Reshape", ["x", "s"], ["r"]), h.make_node("Reshape", ["r", "s0"], ["y"])],
     ["batch", 4, 6], "does not keep the samples apart"),
    # the batch moved to the middle of the output
    (lambda h: [h.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2])], [4, "batch", 6],
     "does not hold the batch as its first dimension"),
    # a product of two values whose batches lie in different dimensions: (4, B, 6) (4, 6, B) -> (4, B, B)
    (lambda h: [h.make_node("Transpose", ["x"], ["a"], perm=[1, 0, 2]),
                h.make_node("Transpose", ["x"], ["b"], perm=[1, 2, 0]), h.make_node("MatMul", ["a", "b"], ["y"])],
     [4, "batch", "batch"], "does not keep the samples apart"),
])
def test_values_whose_batch_the_graph_mixes_are_refused(nodes, out_shape, pattern):
    model = sequence_first(nodes(onnx.helper), out_shape, {"s": np.array([4, -1, 6]), "s0": np.array([-1, 4, 6])})
    with pytest.raises(bc.UnsupportedLayerError, match=pattern):
        bc.from_onnx(model)
