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


def test_a_small_sweep_prints_table_ceilings_and_classes(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHCORE_CACHE_DIR", str(tmp_path))
    out = tmp_path / "log.jsonl"
    assert main(["--sizes", "16,8,4", "--batch-sizes", "1,2", "--rows", "8", "--threads", "1", "--out", str(out)] + QUICK) == 0
    text = capsys.readouterr().out
    assert "ceilings (cpu, 1 threads)" in text and "Invariance classes" in text
    assert "native[seq]" in text and "batch invariant" in text
    backends = 4 if "torch[cpu]" in text else 3  # torch, numpy, native seq, native splitk:4
    assert f", {2 * backends} points" in text
    assert sum(1 for line in out.read_text().splitlines() if '"type": "point"' in line) == 2 * backends
