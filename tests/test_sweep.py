"""sweep(): the planted variance is found exactly, torch's figures are re-derived with plain torch loops,
results round-trip through JSON/CSV, and an interrupted sweep resumes."""

import csv
import json

import numpy as np
import pytest

import batchcore as bc
from batchcore.frontends.torch.chain import build_module
from batchcore.results import numerics as nm

FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)  # a sweep's speed is not under test here

ROWS = 300


@pytest.fixture(scope="module")
def model():
    return bc.mlp([64, 48, 10], activation="relu", head="softmax", seed=0)


def test_native_orders_are_batch_invariant(model):
    res = bc.sweep(model, [1, 2, 3, 8, 64, 300], [bc.native(order="seq"), bc.native(order="splitk:4")], rows=ROWS,
                   timer=FAST)
    for label, groups in res.classes().items():
        assert groups == [[1, 2, 3, 8, 64, 300]], label
    for p in res.points:
        assert p["bitwise_equal_frac"] == 1.0 and p["max_ulp_vs_b1"] == 0 and p["argmax_changed"] == 0
        assert p["peak_bytes"] == p["predicted_bytes"] > 0
        assert p["samples"] >= 3 and p["time_ms"] > 0 and p["timer"]["min_samples"] == 3
        assert p["time_ms_min"] <= p["time_ms"] <= p["time_ms_p99"]
        assert p["gflops"] == pytest.approx(model.flops_per_row * p["batch_size"] / p["time_ms"] / 1e6)


def test_library_like_policy_yields_exactly_the_planted_classes(model):
    sizes = [1, 2, 3, 8, 100, 127, 128, 129, 150, 256, 300]
    res = bc.sweep(model, sizes, [bc.native(policy="library-like")], rows=ROWS, timer=FAST)

    # Expected, derived from the documented boundaries alone: a batch of m rows runs lanes:16 if m == 1,
    # seq if 2 <= m <= 127, splitk:4 otherwise. A sweep at B runs batches of B and a last, shorter one.
    def orders_used(B):  # the order each row was computed in
        lengths = [min(B, ROWS - i) for i in range(0, ROWS, B)]
        return tuple(o for m in lengths for o in [("lanes:16" if m == 1 else "seq" if m <= 127 else "splitk:4")] * m)

    expected = {}
    for B in sizes:
        expected.setdefault(orders_used(B), []).append(B)
    assert res.classes()["native[library-like]"] == list(expected.values())
    # {1} {2..127} {128, 256: 256 rows splitk then 44 seq} {129: 258 then 42} {150, 300: all splitk}
    assert len(expected) == 5 and [129] in res.classes()["native[library-like]"]


torch = pytest.importorskip("torch", reason="torch is not installed")


def test_torch_figures_equal_plain_torch_loops(model):
    sizes = [1, 2, 5, 16, 64, 300]
    res = bc.sweep(model, sizes, [bc.torch(measure_memory=False)], rows=ROWS, timer=FAST)
    data = np.random.default_rng(0).standard_normal((ROWS, 64), dtype=np.float32)  # the sweep's default data
    module = build_module(model)  # an equivalent module of its own
    x = torch.from_numpy(data)

    def batched(B):
        with torch.no_grad():
            return torch.cat([module(x[i:i + B]) for i in range(0, ROWS, B)])

    ref = batched(1)
    by_b = {p["batch_size"]: p for p in res.points}
    for B in sizes:
        out = batched(B)
        frac = (out.view(torch.int32) == ref.view(torch.int32)).double().mean().item()
        assert by_b[B]["bitwise_equal_frac"] == frac
        assert by_b[B]["argmax_changed"] == int((out.argmax(1) != ref.argmax(1)).sum())
    # The finding this project exists for: on this CPU torch is not batch invariant.
    assert len(res.classes()["torch[cpu]"]) > 1


def test_accuracy_and_exact_error_use_labels_and_exact_order(model):
    data = np.random.default_rng(7).standard_normal((50, 64)).astype(np.float32)
    labels = np.random.default_rng(8).integers(0, 10, 50)
    res = bc.sweep(model, [1, 4], [bc.native(order="exact"), bc.native()], data=data, labels=labels, timer=FAST)
    y = bc.native().run(model, data)
    for p in res.points:
        assert p["accuracy"] == float((y.argmax(1) == labels).mean())
    exact_points = [p for p in res.points if p["backend"] == "native[exact]"]
    assert all(p["max_ulp_vs_exact"] == 0 for p in exact_points)


def test_json_csv_roundtrip_and_environment(model, tmp_path):
    res = bc.sweep(model, [1, 2], [bc.native()], rows=20, timer=FAST)
    res.to_json(tmp_path / "r.json")
    back = bc.SweepResult.from_json(tmp_path / "r.json")
    assert back.points == json.loads(json.dumps(res.points)) and back.classes() == res.classes()
    assert back.env["simd"] and back.env["numpy"] and "torch" in back.env
    res.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["batch_size"]) for r in rows] == [1, 2] and rows[0]["fingerprint"] == res.points[0]["fingerprint"]
    assert not list(tmp_path.glob(".batchcore-*"))  # no temporary file left behind


def test_out_file_appends_as_measured_and_resumes(model, tmp_path):
    out = tmp_path / "sweep.jsonl"
    first = bc.sweep(model, [1, 2], [bc.native()], rows=40, timer=FAST, out=out)
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["type"] == "header"
    # Simulate an interruption in the middle of writing a third point.
    with open(out, "a") as f:
        f.write('{"type": "point", "backend": "native[seq]", "batch_si')
    second = bc.sweep(model, [1, 2, 3], [bc.native()], rows=40, timer=FAST, out=out)
    assert [p["batch_size"] for p in second.points] == [1, 2, 3]
    assert second.points[:2] == json.loads(json.dumps(first.points))  # resumed, not re-measured
    assert len(out.read_text().splitlines()) == 4
    assert [p["batch_size"] for p in bc.SweepResult.from_json(out).points] == [1, 2, 3]
    # A different sweep refuses to append to this file.
    with pytest.raises(bc.BatchcoreError, match="different sweep"):
        bc.sweep(model, [1], [bc.native()], rows=41, timer=FAST, out=out)


def test_table_and_classes_render(model):
    res = bc.sweep(model, [1, 3], [bc.native(), bc.numpy()], rows=30, timer=FAST)
    table = res.table()
    assert "native[seq]" in table and "numpy" in table and "GFLOP/s" in table
    assert len(table.splitlines()) == 2 + 4
    assert "batch invariant" in str(res.classes())


def test_numpy_matches_nm_definitions(model):
    data = np.random.default_rng(3).standard_normal((64, 64)).astype(np.float32)
    res = bc.sweep(model, [1, 8], [bc.numpy()], data=data, timer=FAST)
    nb = bc.numpy()
    b1, b8 = nb.run_batched(model, data, 1), nb.run_batched(model, data, 8)
    p8 = [p for p in res.points if p["batch_size"] == 8][0]
    assert p8["bitwise_equal_frac"] == nm.bitwise_equal_frac(b8, b1)
    assert p8["max_ulp_vs_b1"] == int(np.max(np.abs(b8.view(np.int32).astype(np.int64) - b1.view(np.int32))))


def test_points_carry_peak_and_roofline_fractions_of_their_own_probe(model):
    res = bc.sweep(model, [1, 64], [bc.native(threads=1), bc.native(order="splitk:4")], rows=64, timer=FAST)
    linear = 64 * 48 + 48 * 10
    params = linear + 48 + 10
    for p in res.points:
        ceiling = res.env["probes"][p["backend"]]
        assert ceiling["threads"] == (1 if p["backend"] == "native[seq]" else bc._core.default_threads())
        B = p["batch_size"]
        gflops = 2 * B * linear / (p["time_ms"] * 1e-3) / 1e9
        traffic = 4 * (params + B * (64 + 10))
        fits = traffic <= ceiling["last_level_cache_bytes"] // 2
        bandwidth = ceiling["cache_bandwidth_gbs"] if fits else ceiling["bandwidth_gbs"]
        assert p["intensity"] == pytest.approx(2 * B * linear / traffic)
        assert p["peak_frac"] == pytest.approx(gflops / ceiling["peak_gflops"])
        assert p["roofline_frac"] == pytest.approx(gflops / min(ceiling["peak_gflops"], bandwidth * p["intensity"]))
    assert "%peak" in res.table() and "%roof" in res.table()


def test_ceilings_false_leaves_the_fractions_empty(model):
    res = bc.sweep(model, [2], [bc.native()], rows=8, timer=FAST, ceilings=False)
    assert res.env["probes"] == {} and res.points[0]["peak_frac"] is None and res.points[0]["roofline_frac"] is None


def test_environment_records_the_build_and_torch_settings(model):
    torch = pytest.importorskip("torch")
    res = bc.sweep(model, [4], [bc.torch(threads=1, measure_memory=False)], rows=8, timer=FAST, ceilings=False)
    env, settings = res.env, res.points[0]["settings"]
    assert "-ffp-contract=off" in env["build"]["cxx_flags"] and env["build"]["cxx_compiler"]
    if env["cuda_compiled"]:
        assert "--fmad=false" in env["build"]["cuda_flags"]
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    for flag in ("torch_allow_tf32_matmul", "torch_fp16_reduced_precision_reduction", "torch_bf16_reduced_precision_reduction"):
        assert isinstance(env[flag], bool)
    assert settings["threads"] == 1 and torch.get_num_threads() == 1  # set explicitly by the backend


def test_environment_records_the_threading_runtimes_variables(model, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    monkeypatch.delenv("KMP_BLOCKTIME", raising=False)
    res = bc.sweep(model, [2], [bc.native()], rows=8, timer=FAST, ceilings=False)
    threads_env = res.env["thread_environment"]
    assert threads_env["OMP_WAIT_POLICY"] == "passive" and threads_env["KMP_BLOCKTIME"] is None
    assert {"OMP_NUM_THREADS", "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE"} <= set(threads_env)


def test_a_backend_without_a_probe_keeps_its_points_and_says_why(model, monkeypatch):
    import sys

    def unavailable(backend):
        raise bc.DeviceUnavailableError("no probe for this device here")

    monkeypatch.setattr(sys.modules["batchcore.run.sweep"], "ceiling", unavailable)  # the module, not bc.sweep
    res = bc.sweep(model, [2], [bc.native()], rows=8, timer=FAST)
    assert res.env["probes"]["native[seq]"] == {"unavailable": "no probe for this device here"}
    assert res.points[0]["peak_frac"] is None and res.points[0]["time_ms"] > 0
