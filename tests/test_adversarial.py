"""The adversarial suite: every case of adversarial_cases.py in a child process with a timeout.

The cases run one after another in a long-lived child (starting an interpreter and importing batchcore
and torch for each of 300 cases cost most of the suite's time); a case that crashes or hangs it fails,
and the next case gets a new child, so a crash is never blamed on another case. Cases that change the
process for good (an address-space limit, an import hook that hides a package) run in a fresh child of
their own.

A case passes when its child does not die (no signal: no segfault, no abort), answers within the timeout
(no hang), and ends as expected: the named batchcore error (never a raw TypeError, KeyError, MemoryError ...
and never a silent acceptance of invalid input), or "ok" with the case's own checks holding.
"""

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading

import pytest

from adversarial_cases import CASES

CHILD = os.path.join(os.path.dirname(__file__), "adversarial_child.py")
TIMEOUT_S = 120
MARK = "@@ "
# what marks a case that changes its process for good
PROCESS_WIDE = ("resource.setrlimit", "sys.meta_path")


class Child:
    """A long-lived ``adversarial_child.py``: ``ask(name)`` -> its answer, or raises Died/Hung."""

    class Died(Exception):
        pass

    class Hung(Exception):
        pass

    def __init__(self, *names: str):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, CHILD, *names], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self.lines.put(json.loads(line[len(MARK):]))
        self.lines.put(None)  # end of output: the child exited

    def ask(self, name: str | None = None) -> dict:
        if name is not None:
            self.proc.stdin.write(name + "\n")
            self.proc.stdin.flush()
        try:
            answer = self.lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            self.close()
            raise Child.Hung(f"hang: no answer within {TIMEOUT_S} s") from None
        if answer is None:
            code = self.proc.wait()
            self.stderr.seek(0)
            raise Child.Died(f"crash: exit {code}\n{self.stderr.read()[-3000:]}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                stream.close()
            except OSError:  # a pipe whose reader died
                pass


@pytest.fixture(scope="module")
def child():
    holder = {"child": None}
    yield holder
    if holder["child"] is not None:
        holder["child"].close()


def answer_of(name: str, holder: dict) -> dict:
    """The case's answer from the shared child (a fresh one for a process-wide case, or after a death)."""
    if any(k in CASES[name][1] for k in PROCESS_WIDE):
        alone = Child(name)
        try:
            return alone.ask()
        except (Child.Died, Child.Hung) as e:
            pytest.fail(str(e))
        finally:
            alone.close()
    if holder["child"] is None:
        holder["child"] = Child()
    try:
        return holder["child"].ask(name)
    except (Child.Died, Child.Hung) as e:
        holder["child"].close()
        holder["child"] = None  # the next case starts a new child
        pytest.fail(str(e))


def test_a_crash_fails_only_its_own_case_and_a_new_child_takes_the_next():
    crashed = Child()
    crashed.proc.stdin.write("no such case\n")  # the child raises KeyError outside any case: it dies
    crashed.proc.stdin.flush()
    with pytest.raises(Child.Died, match="crash: exit 1"):
        crashed.ask()
    crashed.close()
    holder = {"child": None}
    assert answer_of("sweep_progress", holder)["type"] == "ArgumentError"
    holder["child"].close()


def test_the_suite_has_at_least_150_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name, child):
    expected = CASES[name][0]
    if "import torch" in CASES[name][1]:
        pytest.importorskip("torch")
    got = answer_of(name, child)
    if expected == "ok":
        assert got["outcome"] == "ok", f"{got.get('type')}: {got.get('message')}"
        return
    assert got["outcome"] == "raised", f"silently accepted (expected {expected})"
    assert got["batchcore"], f"raw {got['type']}: {got['message']}"
    assert got["type"] == expected, f"{got['type']} (expected {expected}): {got['message']}"
    assert got["message"].strip(), "an error without a message"
