"""The command line: bad arguments end in a one-line message and exit code 2, never a traceback; a
small sweep prints its table, ceilings and classes."""

import json

import pytest

from batchcore.cli import main

QUICK = ["--min-time", "0", "--target", "0.5", "--timeout", "1", "--rounds", "1", "--no-torch-memory"]


@pytest.mark.parametrize("argv, says", [
    (["--sizes", "8,x"], "comma-separated integers"),
    (["--batch-sizes", "1,two"], "comma-separated integers"),
    (["--rows", "many"], "invalid int value"),
])
def test_malformed_arguments_are_argparse_errors(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize("argv, error", [
    (["--batch-sizes", "0"], "ShapeError"),
    (["--sizes", "8"], "ShapeError"),
    (["--orders", "chunk:0"], "OrderError"),
    (["--device", "tpu"], "DeviceUnavailableError"),
    (["--threads", "0"], "ArgumentError"),
    (["--rounds", "0", "--batch-sizes", "1"], "ArgumentError"),
    (["--batch-sizes", "64", "--rows", "8"], "ShapeError"),
])
def test_bad_values_are_named_batchcore_errors(argv, error, capsys):
    assert main(QUICK + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"batchcore: {error}:") and "Traceback" not in err


def test_info_prints_the_environment(capsys):
    assert main(["--info"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["batchcore"] and env["numpy"] and "cpu" in env


def test_a_small_sweep_prints_table_ceilings_and_classes(capsys, tmp_path):
    out = tmp_path / "log.jsonl"
    assert main(["--sizes", "16,8,4", "--batch-sizes", "1,2", "--rows", "8", "--threads", "1", "--out", str(out)] + QUICK) == 0
    text = capsys.readouterr().out
    assert "ceilings (cpu, 1 threads)" in text and "Invariance classes" in text
    assert "native[seq]" in text and "batch invariant" in text
    backends = 4 if "torch[cpu]" in text else 3  # torch, numpy, native seq, native splitk:4
    assert f", {2 * backends} points" in text
    assert sum(1 for line in out.read_text().splitlines() if '"type": "point"' in line) == 2 * backends


@pytest.mark.parametrize("command", ["sweep", "report", "compare", "probe", "tune", "largest-batch", "study"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and f"usage: batchcore {command}" in capsys.readouterr().out


def test_study_help_names_every_study_its_question_and_json(capsys):
    import importlib

    with pytest.raises(SystemExit):
        main(["study", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
    for name in ("accuracy", "evaluation", "training", "performance", "deployment"):
        question = importlib.import_module(f"batchcore.studies.{name}").QUESTION  # the module; the package's is a function
        assert f"{name} {question}" in text
    assert "--json print the study" in text


def test_sweep_json_compare_and_plot(capsys, tmp_path):
    small = ["--sizes", "16,4", "--batch-sizes", "1,2", "--rows", "8", "--threads", "1"] + QUICK
    assert main(["sweep", *small, "--json", "--out", str(tmp_path / "a.jsonl"), "--plot", str(tmp_path / "a.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {p["backend"] for p in doc["points"]} >= {"numpy", "native[seq]"} and doc["env"]["batchcore"]
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert main(["compare", str(tmp_path / "a.jsonl"), str(tmp_path / "a.jsonl"), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert len(compared["rows"]) == len(doc["points"]) and all(r["ratio"] == 1.0 for r in compared["rows"])
    assert compared["counts"]["SLOWER"] == compared["counts"]["FASTER"] == 0  # a run against itself


def test_explain_prints_why_and_tune_prints_the_schedule(capsys, monkeypatch):
    small = ["--sizes", "40,8", "--batch-sizes", "1,2", "--rows", "8", "--threads", "1", "--orders", "seq"] + QUICK
    assert main(["sweep", *small, "--explain"]) == 0
    text = capsys.readouterr().out
    assert "Why the bits differ" in text and "native[seq], layer 0 (K = 40): one tree at every batch size: seq" in text
    from batchcore.measure import tuning

    before = tuning.in_force()
    monkeypatch.setattr(tuning, "_layer_timer", lambda threads: lambda t, w: 1e-3)  # all equal: the defaults
    try:
        assert main(["tune", "--refresh", "--json"]) == 0
    finally:
        tuning.apply(before)
    found = json.loads(capsys.readouterr().out)
    assert found["traversal"] == "by-reads" and found["source"] == "tuned" and found["gain"] == 1.0


def test_probe_and_largest_batch_print_data(capsys):
    assert main(["probe", "--threads", "1", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["device"] == "cpu" and found["threads"] == 1 and found["peak_gflops"] > 0
    assert main(["largest-batch", "--sizes", "64,32,10", "--budget-mib", "0.25", "--json"]) == 0
    largest = json.loads(capsys.readouterr().out)
    bc = __import__("batchcore")
    model, plan = bc.mlp([64, 32, 10], head="softmax", seed=0), bc.native().plan_bytes  # the planner (tested elsewhere)
    B = largest["batch_size"]
    assert largest["peak_bytes"] == plan(model, B) <= 2**18 < plan(model, B + 1)  # the CLI's MiB are 2^20 bytes
    assert main(["largest-batch", "--sizes", "64,32,10"]) == 2  # the CPU needs a budget
    assert "budget" in capsys.readouterr().err


def test_study_names_are_checked(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "folklore"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_timer_flags_left_out_take_the_default_policy(capsys, monkeypatch):
    """--target given, --timeout and --min-time from $BATCHCORE_TIMER, the rest bc.Timer()'s."""
    monkeypatch.setenv("BATCHCORE_TIMER", "min_time_s=0, timeout_s=0.3, min_samples=4")
    argv = ["--sizes", "8,4", "--batch-sizes", "1", "--rows", "4", "--orders", "seq", "--threads", "1",
            "--rounds", "1", "--no-torch-memory", "--target", "0.4", "--json"]
    assert main(argv) == 0
    timers = [p["timer"] for p in json.loads(capsys.readouterr().out)["points"]]
    assert timers and all(t["target"] == 0.4 and t["timeout_s"] == 0.3 and t["min_time_s"] == 0 for t in timers)
    assert all(t["min_samples"] == 4 and t["confidence"] == 0.95 for t in timers)
