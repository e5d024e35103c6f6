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
