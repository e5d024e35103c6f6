"""Study 2 (evaluation batch size): the loss and accuracy it reports are those of an evaluation loop written
out here in plain torch; with batch-invariant logits (the native core) only the reduction can change the
loss's bits, and the exactly summed loss is then the same at every B; the causes it names follow the bits."""

import math

import numpy as np
import pytest

import batchcore as bc
from batchcore.studies.evaluation import why

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 48), nn.ReLU(), nn.Linear(48, 6)).eval()
    return net, torch.randn(333, 30), torch.randint(0, 6, (333,))


def loop_loss(net, x, y, B):
    """The evaluation loop as users write it: sum of batch mean loss x batch rows, over rows, in float32."""
    total = torch.zeros(())
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), B):
            out = net(x[i:i + B])
            total = total + F.cross_entropy(out, y[i:i + B]) * len(y[i:i + B])
            correct += int((out.argmax(1) == y[i:i + B]).sum())
    return np.float32((total / len(x)).item()), correct / len(x)


def test_the_study_reports_what_a_plain_torch_loop_reports(case):
    net, x, y = case
    study = bc.studies.evaluation(net, x, y, batch_sizes=[1, 7, 64, 333], backends=[bc.torch()])
    b1, _ = loop_loss(net, x, y, 1)
    for p in study.data["points"]:
        loss, acc = loop_loss(net, x, y, p["batch_size"])
        assert np.float32(p["loss"]) == loss and p["accuracy"] == acc
        assert p["loss_equal_b1"] == (loss == b1)


def test_with_batch_invariant_logits_only_the_reduction_moves_the_loss(case):
    net, x, y = case
    study = bc.studies.evaluation(net, x, y, batch_sizes=[1, 7, 64, 333], backends=[bc.native()])
    points = study.data["points"]
    assert all(p["logits_equal_frac"] == 1.0 for p in points)
    assert len({p["loss_exact_sum"] for p in points}) == 1  # per-row losses summed exactly: one value
    with torch.no_grad():
        rows = F.cross_entropy(net(x), y, reduction="none").double()
    assert points[0]["loss_exact_sum"] == pytest.approx(math.fsum(rows.tolist()) / 333, rel=1e-6)
    moved = [p for p in points if not p["loss_equal_b1"]]
    assert moved, "float32 per-batch means regroup the sum: some B must move the loss's bits"
    assert all(p["why"] == "the reduction: per-batch means weighted in float32" for p in moved)
    assert "only the reduction's grouping changes" in study.verdict


def test_the_named_cause_follows_the_bits():
    assert why(logits_equal=True, loss_equal=True) == "-"
    assert why(logits_equal=True, loss_equal=False).startswith("the reduction")
    assert why(logits_equal=False, loss_equal=False).startswith("the logits")
    assert why(logits_equal=False, loss_equal=True).startswith("logits differ")


def test_the_loss_keras_evaluate_reports_is_recorded_at_every_batch_size():
    """With a compiled Keras model, each point carries the loss ``model.evaluate(x, y, batch_size=B)`` reports
    (recomputed here with Keras itself) and whether its bits equal B=1's; an uncompiled one says why not."""
    from keras_models import import_keras, wide_mlp

    keras = import_keras()
    model = wide_mlp(keras, seed=7, width=64, hidden=256)
    model.compile(loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((160, 64)).astype(np.float32), rng.integers(0, 10, 160)
    study = bc.studies.evaluation(model, x, y, batch_sizes=[1, 32, 160], backends=[bc.keras(), bc.native()],
                                  progress=False)
    keras_points = [p for p in study.data["points"] if p["backend"] == "keras[predict]"]
    own = {B: np.float32(model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)["loss"]) for B in (1, 32, 160)}
    for p in keras_points:
        assert np.float32(p["reported_loss"]).view(np.uint32) == own[p["batch_size"]].view(np.uint32)
        assert p["reported_loss_equal_b1"] == (own[p["batch_size"]].view(np.uint32) == own[1].view(np.uint32))
    assert "sparse_categorical_crossentropy" in keras_points[0]["reported_loss_how"]
    assert all(p["reported_loss"] is None and "no evaluation of its own" in p["reported_loss_how"]
               for p in study.data["points"] if p["backend"] == "native[seq]")
    assert "the loss its framework reports (model.evaluate(x, y, batch_size=B))" in study.verdict
    assert any(t.title.startswith("The loss the framework itself reports") for t in study.tables)
    bare = wide_mlp(keras, seed=9, width=64, hidden=256)
    points = bc.studies.evaluation(bare, x, y, batch_sizes=[1, 8], backends=[bc.keras()], progress=False).data["points"]
    assert all(p["reported_loss"] is None and "not compiled with a loss" in p["reported_loss_how"] for p in points)
