"""Study 4 (performance): its points are a sweep's; its knee is the first step whose throughput gain, recomputed
here from the medians, falls under 5 %; its largest batch is the planner's largest within the budget, found by
probes whose out-of-memory errors were caught; backends that cannot bound memory get none."""

import numpy as np
import pytest

import batchcore as bc

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def study():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    return bc.studies.performance(net, torch.randn(256, 64), batch_sizes=[1, 4, 16, 64, 256],
                                  backends=[bc.torch(measure_memory=False), bc.native()], budget_bytes=2**20,
                                  latency_ms=0.5, timer=bc.Timer(min_time_s=0, timeout_s=0.2, target=0.1), rounds=2)


def test_the_knee_is_the_first_step_under_five_percent(study):
    for label, knee in study.data["knee"].items():
        pts = [p for p in study.data["points"] if p["backend"] == label]
        rates = [p["batch_size"] / p["time_ms"] for p in pts]
        first = next((a["batch_size"] for a, ra, rb in zip(pts, rates, rates[1:], strict=False) if rb / ra < 1.05), None)
        assert knee["batch_size"] == first


def test_the_largest_batch_is_the_planners_largest_within_the_budget(study):
    fits = study.data["largest"]
    assert set(fits) == {"native[seq]"}  # torch on the CPU cannot bound its memory
    found = fits["native[seq]"]
    model = bc.from_torch(torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)))
    plan = bc.native().plan_bytes
    B = found["batch_size"]
    assert plan(model, B) <= 2**20 < plan(model, B + 1) and found["peak_bytes"] == plan(model, B)
    assert any(not ok for _, ok, _ in found["steps"])  # out-of-memory probes were caught and the search went on
    assert f"largest batch within 1 MiB: {B}" in study.verdict


def test_the_tables_hold_every_point(study):
    table = study.tables[0]
    assert len(table.rows) == len(study.data["points"]) == 10
    assert [r[1] for r in table.rows] == [1, 4, 16, 64, 256] * 2
    assert np.all([r[2] > 0 for r in table.rows])


def test_the_module_is_read_once(monkeypatch):
    import batchcore.frontends.torch as torch_frontend  # what the frontend's read() calls

    calls = []
    real = torch_frontend.from_torch
    monkeypatch.setattr(torch_frontend, "from_torch", lambda *a, **k: calls.append(1) or real(*a, **k))
    net = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    bc.studies.performance(net, torch.randn(4, 8), batch_sizes=[1, 4], backends=[bc.torch(measure_memory=False), bc.native()],
                           budget_bytes=2**16, timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), rounds=1)
    assert len(calls) == 1  # for the sweep and the largest-batch search alike


def test_the_study_runs_a_keras_model_beside_the_native_core():
    from keras_models import import_keras, wide_mlp

    keras = import_keras()
    model = wide_mlp(keras, seed=6, width=32, hidden=64)
    x = np.random.default_rng(7).standard_normal((64, 32)).astype(np.float32)
    study = bc.studies.performance(model, x, batch_sizes=[1, 8, 64], backends=[bc.keras(mode="call"), bc.native()],
                                   timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), progress=False)
    labels = {(p["backend"], p["batch_size"]) for p in study.data["points"]}
    assert labels == {(b, B) for b in ("keras[call]", "native[seq]") for B in (1, 8, 64)}
    assert study.verdict.startswith("keras[call]: ")
