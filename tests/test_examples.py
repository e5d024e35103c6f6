"""The examples run as users run them (``python examples/NAME.py``), in their --quick form: they train on
scikit-learn's bundled digits, reach an accuracy no guess reaches, and print their sweep's tables; the
accuracy they print for the sweep's B=1 point is recomputed here from the JSON-lines log they write."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["digits_cnn", "digits_transformer"])
def test_example_runs_and_learns(name, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    log = tmp_path / "points.jsonl"
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(log)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy ([0-9.]+) on 450 held-out digits", done.stdout).group(1))
    assert accuracy > 0.3  # ten classes: a guess gets 0.1; two quick epochs get well past it
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("torch[cpu]")]
    assert [int(r[1]) for r in rows[:3]] == [1, 8, 64] and [int(r[1]) for r in rows[4:7]] == [1, 8, 64]
    points = [json.loads(line) for line in log.read_text().splitlines()[1:]]  # the first line is the header
    torch_points = [p for p in points if p["backend"] == "torch[cpu]"]
    assert [p["batch_size"] for p in torch_points] == [1, 8, 64]
    assert all(p["accuracy"] == pytest.approx(accuracy, abs=5e-5) for p in torch_points if p["argmax_changed"] == 0)
    # The native core read the module through torch.fx: both orders, batch invariant, exact memory
    native = [p for p in points if p["backend"].startswith("native[")]
    assert sorted({p["backend"] for p in native}) == ["native[pairwise]", "native[seq]"]
    assert all(p["bitwise_equal_frac"] == 1.0 and p["argmax_changed"] == 0 for p in native)
    assert all(p["peak_bytes"] == p["predicted_bytes"] for p in native)
    assert re.search(r"native\[seq\]\s+batch invariant:\s+\{1, 8, 64\}", done.stdout)


def run_study_example(name, tmp_path):
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_study_1_accuracy_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    text, study = run_study_example("01_accuracy", tmp_path)
    assert "Verdict: " in text and study["study"] == "accuracy"
    points = study["data"]["points"]
    expected = [(b, B) for b in ("torch[cpu]", "native[seq]") for B in (1, 8, 64)]
    assert [(p["backend"], p["batch_size"]) for p in points] == expected
    assert all(p["accuracy"] > 0.3 for p in points)  # ten classes: a guess gets 0.1
    assert all(p["flips"] == 0 and p["bitwise_equal_frac"] == 1.0 for p in points if p["backend"] == "native[seq]")
    assert "first-order bound through 8 operations" in study["data"]["bound"]


def test_study_2_evaluation_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    text, study = run_study_example("02_evaluation", tmp_path)
    assert "Verdict: " in text and study["study"] == "evaluation"
    native = [p for p in study["data"]["points"] if p["backend"] == "native[seq]"]
    assert [p["batch_size"] for p in native] == [1, 8, 64] and all(p["logits_equal_frac"] == 1.0 for p in native)
    assert len({p["loss_exact_sum"] for p in native}) == 1


def test_study_3_training_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    text, study = run_study_example("03_training", tmp_path)
    assert "Verdict: " in text and study["study"] == "training"
    per_b = study["data"]["batch_effect"]["per_batch"]
    assert sorted(map(int, per_b)) == [32, 128, 512] and all(len(v["accuracies"]) == 2 for v in per_b.values())
    acc = study["data"]["accumulation"]
    assert acc["rows"] == 128 and acc["steps"] == 4 and 0 <= acc["equal_frac"] <= 1
    modes = study["data"]["batchnorm"]
    assert all(r["flips_vs_full"] == 0 for r in modes if r["batch_size"] == 450)


def test_study_4_performance_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    text, study = run_study_example("04_performance", tmp_path)
    assert "Verdict: " in text and study["study"] == "performance"
    assert {p["backend"] for p in study["data"]["points"]} == {"torch[cpu]", "native[seq]"}
    found = study["data"]["largest"]["native[seq]"]
    assert found["peak_bytes"] <= 16 * 2**20 and any(not ok for _, ok, _ in found["steps"])


def test_study_5_deployment_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    text, study = run_study_example("05_deployment", tmp_path)
    assert "Verdict: " in text and study["study"] == "deployment"
    d = study["data"]
    assert [(s["max_batch"], s["max_delay_ms"]) for s in d["settings"]] == [(b, t) for b in (1, 4, 16) for t in (0.0, 1.0)]
    assert d["validation"] and all(set(v["agree"]) == set(v["replay_agree"]) == {"p50", "p99"} for v in d["validation"])


def test_the_keras_predict_example_answers_its_seed_from_its_own_points(tmp_path):
    pytest.importorskip("keras")
    log = tmp_path / "points.jsonl"
    done = subprocess.run([sys.executable, str(EXAMPLES / "keras_predict.py"), "--quick", "--out", str(log)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    points = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    assert {(p["backend"], p["batch_size"]) for p in points} == {(b, B) for b in ("keras[predict]", "keras[call]",
                                                                                 "native[seq]") for B in (1, 2, 10)}
    answer = done.stdout.splitlines()[-1]
    assert answer.startswith("Claim 'B=1 is the most precise': ")
    predict = {p["batch_size"]: p for p in points if p["backend"] == "keras[predict]"}
    for B, p in predict.items():  # the sentence's figures are the points'
        assert f"B={B}: {p['max_ulp_vs_exact']} ULP" in answer
    same = all(p["bitwise_equal_frac"] == 1 for p in predict.values())
    assert ("gives the same bits at B=1, 2 and 10" in answer) == same


def test_the_keras_evaluate_example_answers_its_seeds_from_its_study(tmp_path):
    pytest.importorskip("keras")
    pytest.importorskip("sklearn")
    text, study = run_study_example("keras_evaluate", tmp_path)
    own = {p["batch_size"]: p for p in study["data"]["points"] if p["backend"] == "keras[predict]"}
    assert sorted(own) == [1, 32, 64, 450] and all(p["reported_loss"] is not None for p in own.values())
    first, second = text.splitlines()[-2:]
    assert first.startswith("Evaluate at 32 vs 512: model.evaluate reports "
                            f"{own[32]['reported_loss']:.9g} at 32 and {own[450]['reported_loss']:.9g} at 512")
    assert second.startswith("Trained at 256, evaluated at 64: ") and f"{own[64]['reported_loss']:.9g}" in second
    native = [p for p in study["data"]["points"] if p["backend"] == "native[seq]"]
    assert all(p["logits_equal_frac"] == 1.0 for p in native)
