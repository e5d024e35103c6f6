"""Hugging Face models as users have them (built from their configs with random weights: nothing is
downloaded), swept on the torch backend with its defaults. Every figure is recomputed here with the
model's own plain loop over batches."""

import numpy as np
import pytest

import batchcore as bc
import graph_reference as ref
from point_checks import assert_as_close_as_orders_allow

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
SIZES = [1, 3, 8]


def bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=3)
    return transformers.BertForSequenceClassification(config).eval()


def gpt2():
    torch.manual_seed(1)
    config = transformers.GPT2Config(vocab_size=60, n_embd=32, n_layer=2, n_head=4, n_positions=16,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def plain_logits(model, ids, B):
    with torch.no_grad():
        return torch.cat([model(ids[i:i + B]).logits for i in range(0, len(ids), B)])


def bits_equal(a, b):
    return (a.contiguous().view(torch.int32) == b.contiguous().view(torch.int32))


def ulps(a, b):
    def rank(t):
        i = t.contiguous().view(torch.int32).long()
        return torch.where(i < 0, -(i & 0x7FFFFFFF), i)
    return int((rank(a) - rank(b)).abs().max())


# transformers 5 names GPT-2's cache field "cache" (4.x: "past_key_values")
@pytest.mark.parametrize("make, left_out", [(bert, []), (gpt2, ["(DynamicCache)"])])
def test_a_hugging_face_model_on_the_torch_backend_with_its_defaults(make, left_out):
    model = make()
    ids = torch.from_numpy(np.random.default_rng(2).integers(0, 60, (8, 10)))
    labels = np.random.default_rng(3).integers(0, 3, 8) if make is bert else None
    res = bc.sweep(model, data=ids, labels=labels, batch_sizes=SIZES, backends=[bc.torch()], timer=FAST, rounds=1,
                   progress=False)
    per_b = {B: plain_logits(model, ids, B) for B in SIZES}
    shape = list(per_b[1].shape)
    for p in res.points:
        got, b1 = per_b[p["batch_size"]], per_b[1]
        assert p["outputs"] == [{"name": "output['logits']", "format": "fp32", "shape": shape}]
        assert [name.split(" ")[-1] for name in p["outputs_left_out"]] == left_out
        assert p["bitwise_equal_frac"] == pytest.approx(float(bits_equal(got, b1).double().mean()), abs=0)
        assert p["max_ulp_vs_b1"] == ulps(got, b1)
        assert p["argmax_changed"] == int((got.argmax(-1) != b1.argmax(-1)).sum())
        per_row = 1 if make is bert else shape[1]
        assert p["argmax_of"].endswith(f"{per_row} prediction{'s' if per_row > 1 else ''} of {shape[-1]} classes per row")
        if labels is not None:
            assert p["accuracy"] == pytest.approx(float((got.argmax(-1).numpy() == labels).mean()), abs=0)
        # torch's CPU memory, measured in a process that never imported transformers
        assert p["peak_bytes"] is not None and p["peak_bytes"] > 0, p["memory_method"]
    fps = {p["batch_size"]: p["fingerprint"] for p in res.points}
    for a in SIZES:
        for b in SIZES:
            assert (fps[a] == fps[b]) == bool(bits_equal(per_b[a], per_b[b]).all()), (a, b)


@pytest.mark.parametrize("make", [bert, gpt2])
def test_from_torch_reads_a_hugging_face_model_through_torch_export(make):
    """torch.fx cannot trace these; torch.export captures them and the native graph runs them: bit for bit
    as the definitions, the same bits at every batch size, and as close to torch as the two orders allow."""
    model = make()
    graph = bc.from_torch(model, input_shape=(10,), input_dtype="int64")
    ids = np.random.default_rng(4).integers(0, 60, (6, 10))
    got = bc.native().run(graph, ids)
    assert got[:2].tobytes() == ref.run(graph, ids[:2]).tobytes()
    alone = np.concatenate([bc.native().run(graph, ids[i:i + 1]) for i in range(len(ids))])
    assert got.tobytes() == alone.tobytes()
    with torch.no_grad():
        want = model(torch.from_numpy(ids)).logits.numpy()
    exact = bc.native(order="exact").run(graph, ids).reshape(want.shape)
    assert_as_close_as_orders_allow(got, want, exact)


@pytest.mark.parametrize("make", [bert, gpt2])
def test_from_onnx_reads_a_hugging_face_model_exported_to_onnx(make, tmp_path):
    """The same models through ONNX: the exporter's attention moves the batch (merged with the heads) and
    guards its softmax with Where(IsNaN); the native graph reads it bit for bit as the definitions, the same
    bits at every batch size, and as close to ONNX Runtime as the two orders allow."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    model = make()
    ids = np.random.default_rng(5).integers(0, 60, (6, 10))
    if make is gpt2:  # its key/value cache is no tensor: the exporter fails, and says how to go on
        with pytest.raises(bc.UnsupportedLayerError, match=r"RuntimeError: Found .*DynamicCache.*use_cache=False"):
            bc.export_onnx(model, ids[:2], tmp_path / "cache.onnx")
        assert list(tmp_path.iterdir()) == []
        model.config.use_cache = False
    path = bc.export_onnx(model, ids[:2], tmp_path / "model.onnx")
    graph = bc.from_onnx(path)
    assert "matmul" in [n.op for n in graph.nodes]  # the scores and the values: products of two computed values
    got = bc.native().run(graph, ids)
    assert got[:2].tobytes() == ref.run(graph, ids[:2]).tobytes()
    alone = np.concatenate([bc.native().run(graph, ids[i:i + 1]) for i in range(len(ids))])
    assert got.tobytes() == alone.tobytes()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: ids})[0]
    exact = bc.native(order="exact").run(graph, ids)
    assert_as_close_as_orders_allow(got, want, exact)
