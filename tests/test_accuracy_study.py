"""Study 1 (accuracy against the batch size): its figures agree with a plain torch loop recomputed here, its
intervals with the Wilson formula written out, and its flip verdicts with planted cases: rounding flips of
planted tied classes are 'within rounding', a batch-dependent output is 'suspect' (the verdicts themselves on
hand-derived numbers: test_flips.py)."""

import json
import math

import numpy as np
import pytest

import batchcore as bc
from batchcore.explain.bound import forward_error_bound
from batchcore.explain.flips import flip_records

torch = pytest.importorskip("torch")
nn = torch.nn


def wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_the_study_agrees_with_a_plain_torch_loop():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 7)).eval()
    x = torch.randn(300, 40)
    labels = torch.randint(0, 7, (300,))
    study = bc.studies.accuracy(net, x, labels, batch_sizes=[1, 3, 64, 300], backends=[bc.torch()])
    with torch.no_grad():
        ref = {B: torch.cat([net(x[i:i + B]) for i in range(0, 300, B)]).numpy() for B in (1, 3, 64, 300)}
    for p in study.data["points"]:
        y = ref[p["batch_size"]]
        correct = int((y.argmax(1) == labels.numpy()).sum())
        assert p["correct"] == correct and p["accuracy"] == correct / 300
        assert p["accuracy_ci"] == pytest.approx(wilson(correct, 300), abs=1e-12)
        assert p["flips"] == int((y.argmax(1) != ref[1].argmax(1)).sum())
        assert p["bitwise_equal_frac"] == float((y.view(np.uint32) == ref[1].view(np.uint32)).mean())
    assert study.study == "accuracy" and study.verdict and "Wilson" in study.tables[0].title


def test_rounding_flips_of_tied_classes_are_within_rounding():
    # Class 1's weights are class 0's reversed and every row is a palindrome, so both logits sum the same
    # products (in reverse order): exactly equal, and which one wins is rounding's choice. The library-like
    # policy runs lanes:16 at B=1 and seq at B=8: other roundings, real flips.
    torch.manual_seed(2)
    lin = nn.Linear(256, 2)
    with torch.no_grad():
        lin.weight[1] = lin.weight[0].flip(0)
        lin.bias[1] = lin.bias[0]
    net = nn.Sequential(lin).eval()
    half = torch.randn(400, 128)
    x = torch.cat([half, half.flip(1)], 1)
    study = bc.studies.accuracy(net, x, torch.zeros(400, dtype=torch.int64), batch_sizes=[1, 8],
                                backends=[bc.native(policy="library-like")])
    flips = study.data["flips"]
    assert len(flips) > 20
    assert all(f["verdict"] == "within rounding" for f in flips)
    assert all(f["pair_change"] <= f["rounding_bound"] for f in flips)
    assert "within rounding" in study.verdict


def test_a_batch_dependent_output_is_suspect():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(16, 4)).eval()
    x = torch.randn(64, 16)
    with torch.no_grad():
        y_b1 = torch.cat([net(x[i:i + 1]) for i in range(64)]).numpy()
        shifted = torch.cat([net(x[i:i + 8]) - 0.5 * net(x[i:i + 8]).mean(0) for i in range(0, 64, 8)]).numpy()
    bound, _ = forward_error_bound(bc.from_torch(net), x.numpy())
    flips = flip_records(shifted, y_b1, np.zeros(64, dtype=np.int64), bound)
    assert flips and all(f["verdict"] == "suspect" for f in flips)


def test_the_study_writes_json_the_report_reads(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 3)).eval()
    study = bc.studies.accuracy(net, torch.randn(32, 8), torch.randint(0, 3, (32,)), batch_sizes=[1, 4])
    study.to_json(tmp_path / "acc.json")
    doc = json.loads((tmp_path / "acc.json").read_text())
    assert doc["type"] == "study" and doc["study"] == "accuracy" and doc["env"]["batchcore"]
    assert [p["batch_size"] for p in doc["data"]["points"]] == [1, 4]
    from batchcore import report as html_report

    page = html_report.render([tmp_path / "acc.json"])
    assert study.question in page and "Accuracy per batch size" in page


def test_bad_labels_and_outputs_are_named():
    net = nn.Sequential(nn.Linear(8, 3)).eval()
    with pytest.raises(bc.ShapeError, match="labels must be integers of shape"):
        bc.studies.accuracy(net, torch.randn(16, 8), torch.zeros(15, dtype=torch.int64))
    with pytest.raises(bc.ShapeError, match="no floating output of shape"):
        bc.studies.accuracy(lambda t: t.sum(1), torch.randn(16, 8), torch.zeros(16, dtype=torch.int64))


def test_the_study_runs_a_keras_model_and_agrees_with_keras_own_predict():
    """A Keras model through Keras's predict and the native core: each backend's flips and accuracy per B
    recomputed here (Keras's own predict; the native core's B=1 rows alone)."""
    from keras_models import import_keras, plain_loop, wide_mlp

    keras = import_keras()
    model = wide_mlp(keras, seed=4, width=64, hidden=256)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    study = bc.studies.accuracy(model, x, y, batch_sizes=[1, 8, 128], backends=[bc.keras(), bc.native()], progress=False)
    ref = plain_loop(model, x, 1, "predict")
    for p in study.data["points"]:
        if p["backend"] == "keras[predict]":
            got = plain_loop(model, x, p["batch_size"], "predict")
            assert p["flips"] == int((got.argmax(1) != ref.argmax(1)).sum())
            assert p["correct"] == int((got.argmax(1) == y).sum())
        else:
            assert p["flips"] == 0 and p["bitwise_equal_frac"] == 1
