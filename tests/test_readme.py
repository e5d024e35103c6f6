"""The README's quick start, extracted from the README itself, run as users run it: a plain script with
no ``if __name__ == "__main__":`` guard, from standard input and as a notebook cell (``exec`` of the text).
(``python -c`` is left out: like standard input it runs the text as a ``__main__`` with no file, and each
quick start costs CI most of a minute.) Each must finish and print its table with torch's memory measured."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
TIMEOUT_S = 600


def snippet(name: str = "quickstart") -> str:
    with open(README) as f:
        text = f.read()
    block = re.search(rf"<!-- ci:{name} -->\s*```python\n(.*?)```\s*<!-- /ci:{name} -->", text, re.S)
    assert block, f"README.md has no ci:{name} block"
    return block.group(1)


def quick_start() -> str:
    return snippet("quickstart")


def run(args, tmp_path, stdin=None):
    try:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=TIMEOUT_S, input=stdin, env={**os.environ, "PYTHONPATH": ""})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the quick start did not finish within {TIMEOUT_S} s (a child re-importing __main__?)")


@pytest.mark.parametrize("how", ["script", "stdin", "notebook_exec"])
def test_the_quick_start_runs_as_users_run_it(how, tmp_path):
    pytest.importorskip("torch")
    code = quick_start()
    assert "__main__" not in code  # users do not write the guard
    (tmp_path / "qs.py").write_text(code)
    if how == "script":
        done = run(["qs.py"], tmp_path)
    elif how == "stdin":
        done = run(["-"], tmp_path, stdin=code)
    else:  # a notebook cell: the text exec'd in an interactive __main__ that has no file
        done = run(["-c", "exec(compile(open('qs.py').read(), '<cell>', 'exec'))"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("torch[cpu]") >= 7 + 1  # seven table rows and its line of classes
    torch_rows = [line for line in out.splitlines() if line.startswith("torch[cpu]") and "~" in line]
    assert len(torch_rows) == 7, "torch's CPU memory was not measured at every batch size"
    assert "batch invariant" in out
    assert (tmp_path / "sweep.json").exists() and (tmp_path / "sweep.csv").exists()


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_the_own_module_example_runs_as_users_run_it(how, tmp_path):
    pytest.importorskip("torch")
    code = snippet("own-module")
    assert "__main__" not in code
    (tmp_path / "own.py").write_text(code)
    done = run(["own.py"], tmp_path) if how == "script" else run(["-"], tmp_path, stdin=code)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("torch[cpu]")]
    assert [int(r[1]) for r in rows[:5]] == [1, 2, 8, 64, 256]
    classes = " ".join(rows[5])  # the line of classes: "torch[cpu] 3 classes: {1} ..." or "batch invariant"
    assert "classes:" in classes or "batch invariant" in classes, classes
    assert all(any(cell.startswith("~") for cell in r) for r in rows[:5]), "torch's CPU memory was not measured"


@pytest.mark.parametrize("how", ["script"])  # stdin: the quick start shows it; one CNN sweep costs ~40 s
def test_the_graph_model_example_runs_as_users_run_it(how, tmp_path):
    """The CNN of the README, read by from_torch: the native rows are batch invariant, their memory exact."""
    code = snippet("graph-model")
    assert "__main__" not in code
    (tmp_path / "cnn.py").write_text(code)
    done = run(["cnn.py"], tmp_path) if how == "script" else run(["-"], tmp_path, stdin=code)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    native = [line.split() for line in lines if line.startswith("native[seq]")]
    assert [int(r[1]) for r in native[:5]] == [1, 2, 8, 64, 256]
    assert "batch invariant" in " ".join(native[5])
    assert not any(cell.startswith("~") for r in native[:5] for cell in r), "native memory is exact, not ~"


def test_the_study_example_runs_and_its_report_is_written(tmp_path):
    """The README's study snippet as a plain script, then the report command it names, on its output."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    code = snippet("study")
    assert "__main__" not in code
    (tmp_path / "study.py").write_text(code)
    done = run(["study.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Verdict: " in done.stdout and "native[seq]" in done.stdout
    report = run(["-m", "batchcore", "report", "accuracy.json", "-o", "report.html"], tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Does a larger batch change" in (tmp_path / "report.html").read_text()
