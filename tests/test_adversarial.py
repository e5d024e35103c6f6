"""The adversarial suite: every case of adversarial_cases.py in a fresh child process with a timeout.

A case passes when its child exits normally (no signal: no segfault, no abort), within the timeout (no
hang), and ends as expected: the named batchcore error (never a raw TypeError, KeyError, MemoryError ...
and never a silent acceptance of invalid input), or "ok" with the case's own checks holding.
"""

import json
import os
import subprocess
import sys

import pytest

from adversarial_cases import CASES

CHILD = os.path.join(os.path.dirname(__file__), "adversarial_child.py")
TIMEOUT_S = 120


def test_the_suite_has_at_least_150_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name):
    expected = CASES[name][0]
    if "import torch" in CASES[name][1]:
        pytest.importorskip("torch")
    try:
        done = subprocess.run([sys.executable, CHILD, name], capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: no answer within {TIMEOUT_S} s")
    assert done.returncode == 0, f"crash: exit {done.returncode}\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"no answer\n{done.stderr[-3000:]}"
    got = json.loads(lines[-1])
    if expected == "ok":
        assert got["outcome"] == "ok", f"{got.get('type')}: {got.get('message')}"
        return
    assert got["outcome"] == "raised", f"silently accepted (expected {expected})"
    assert got["batchcore"], f"raw {got['type']}: {got['message']}"
    assert got["type"] == expected, f"{got['type']} (expected {expected}): {got['message']}"
    assert got["message"].strip(), "an error without a message"
