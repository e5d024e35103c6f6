"""The README's snippets, extracted from the README itself, run as users run them: the quick start as a
plain script with no ``if __name__ == "__main__":`` guard (it must finish and print its table with torch's
memory measured). The other ways users run code (standard input, ``python -c``, a notebook cell: a
``__main__`` with no file, which torch's memory child must not re-import) each run a one-point sweep of
the same kind: a full quick start costs CI most of a minute, and the mode is what they test."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # the README's snippets and the docs' alike
TIMEOUT_S = 600
# every snippet of the README and the docs, by its ci:NAME marker, and the test that runs it
RUN_BY = {"quickstart": "test_the_quick_start_runs_as_a_script", "own-model": "test_the_readmes_own_model_runs",
          "study": "test_the_study_example_runs_and_its_report_is_written",
          "own-module": "test_the_own_module_example_runs_as_a_script",
          "graph-model": "test_the_graph_model_example_runs_as_a_script", "timer": "test_the_timer_snippet_runs",
          "keras-model": "test_the_keras_example_runs_as_a_script",
          "hugging-face": "test_the_hugging_face_example_runs_as_a_script",
          "onnx-model": "test_the_onnx_example_runs_as_a_script", "jax-model": "test_the_jax_example_runs_as_a_script",
          "audit": "test_the_audit_snippet_runs_as_a_script_on_a_local_ray"}


def snippet(name: str = "quickstart") -> str:
    for page in PAGES:
        block = re.search(rf"<!-- ci:{name} -->\s*```python\n(.*?)```\s*<!-- /ci:{name} -->", page.read_text(), re.S)
        if block:
            return block.group(1)
    raise AssertionError(f"neither README.md nor docs/ has a ci:{name} block")


def test_every_snippet_is_run_by_a_test():
    """A ```python block outside a ci:NAME marker, or a marker no test runs, fails here."""
    for page in PAGES:
        text = page.read_text()
        blocks = len(re.findall(r"^```python$", text, re.M))
        marked = re.findall(r"<!-- ci:([\w-]+) -->\s*```python\n", text)
        assert blocks == len(marked), f"{page.name}: {blocks - len(marked)} python snippet(s) no test runs"
        for name in marked:
            assert name in RUN_BY and RUN_BY[name] in globals(), f"{page.name}: ci:{name} is run by no test"
    assert len(README.read_bytes()) <= 15 * 1024, "README.md is a landing page: reference text goes to docs/"


def quick_start() -> str:
    return snippet("quickstart")


# The default policy for the snippets (docs/measurement.md): what they do is on trial, not how precisely
# they time (the timer's own tests are in test_timing.py); a snippet that passes its own timer keeps it.
SMOKE_TIMER = "min_time_s=0,timeout_s=0.2,target=0.5"


def run(args, tmp_path, stdin=None):
    try:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S,
                              input=stdin, env={**os.environ, "PYTHONPATH": "", "BATCHCORE_TIMER": SMOKE_TIMER})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the quick start did not finish within {TIMEOUT_S} s (a child re-importing __main__?)")


@pytest.mark.slow
def test_the_quick_start_runs_as_a_script(tmp_path):
    pytest.importorskip("torch")
    code = quick_start()
    assert "__main__" not in code  # users do not write the guard
    (tmp_path / "qs.py").write_text(code)
    done = run(["qs.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("torch[cpu]") >= 7 + 1  # seven table rows and its line of classes
    torch_rows = [line for line in out.splitlines() if line.startswith("torch[cpu]") and "~" in line]
    assert len(torch_rows) == 7, "torch's CPU memory was not measured at every batch size"
    assert "batch invariant" in out
    assert (tmp_path / "sweep.json").exists() and (tmp_path / "sweep.csv").exists()


# One point of the quick start's kind (torch's CPU memory measured in a child process) and one of a module
# run as it is (its memory from its torch.export capture): what the run modes below put on trial.
ONE_POINT = """import batchcore as bc, torch
fast = bc.Timer(min_time_s=0, target=0.5, timeout_s=0.2)
res = bc.sweep(bc.mlp([16, 8], seed=0), batch_sizes=[2], backends=[bc.torch()], rows=4, timer=fast, rounds=1)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()).eval()
own = bc.sweep(net, batch_sizes=[2], backends=[bc.torch()], data=torch.randn(4, 1, 5, 5), timer=fast, rounds=1)
print(res.table(), own.table(), sep="\\n")
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stdin", "python_c", "notebook_exec"])
def test_a_sweep_runs_from_a_main_without_a_file(how, tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "one.py").write_text(ONE_POINT)
    if how == "stdin":
        done = run(["-"], tmp_path, stdin=ONE_POINT)
    elif how == "python_c":
        done = run(["-c", ONE_POINT], tmp_path)
    else:  # a notebook cell: the text exec'd in an interactive __main__ that has no file
        done = run(["-c", "exec(compile(open('one.py').read(), '<cell>', 'exec'))"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("torch[cpu]") and line.split()[1] == "2"]
    assert len(rows) == 2 and all("~" in r for r in rows), "torch's CPU memory was not measured: " + done.stdout


def table_batch_sizes(lines, label):
    """The batch sizes of ``label``'s rows in a printed ``res.table()`` (its classes line left out)."""
    return [int(line.split()[1]) for line in lines if line.startswith(label + " ") and line.split()[1].isdigit()
            and "classes:" not in line]


@pytest.mark.slow
def test_the_readmes_own_model_runs(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "own.py").write_text(snippet("own-model"))
    done = run(["own.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "native[seq]" in done.stdout and "batch invariant" in done.stdout, done.stdout


def test_the_timer_snippet_runs(tmp_path):
    (tmp_path / "timer.py").write_text(snippet("timer"))
    done = run(["timer.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    words = done.stdout.split()  # median, (low, high), target met, noisy
    assert float(words[0]) > 0 and words[-2] in ("True", "False") and words[-1] in ("True", "False"), done.stdout


@pytest.mark.slow
def test_the_own_module_example_runs_as_a_script(tmp_path):
    pytest.importorskip("torch")
    code = snippet("own-module")
    assert "__main__" not in code
    (tmp_path / "own.py").write_text(code)
    done = run(["own.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("torch[cpu]")]
    assert [int(r[1]) for r in rows[:5]] == [1, 2, 8, 64, 256]
    classes = " ".join(rows[5])  # the line of classes: "torch[cpu] 3 classes: {1} ..." or "batch invariant"
    assert "classes:" in classes or "batch invariant" in classes, classes
    assert all(any(cell.startswith("~") for cell in r) for r in rows[:5]), "torch's CPU memory was not measured"


@pytest.mark.slow
def test_the_graph_model_example_runs_as_a_script(tmp_path):
    """The CNN of the README, read by from_torch: the native rows are batch invariant, their memory exact."""
    code = snippet("graph-model")
    assert "__main__" not in code
    (tmp_path / "cnn.py").write_text(code)
    done = run(["cnn.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    native = [line.split() for line in lines if line.startswith("native[seq]")]
    assert [int(r[1]) for r in native[:5]] == [1, 2, 8, 64, 256]
    assert "batch invariant" in " ".join(native[5])
    assert not any(cell.startswith("~") for r in native[:5] for cell in r), "native memory is exact, not ~"


@pytest.mark.slow
def test_the_keras_example_runs_as_a_script(tmp_path):
    """The Keras model of docs/models.md: Keras's two ways at every batch size, the native core invariant."""
    code = snippet("keras-model")
    (tmp_path / "keras_model.py").write_text(code)
    done = run(["keras_model.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for label in ("keras[predict]", "keras[call]", "native[seq]"):
        rows = [line.split() for line in lines if line.startswith(label)]
        assert [int(r[1]) for r in rows[:5]] == [1, 2, 10, 64, 256], label
    assert "batch invariant" in next(line for line in lines if line.startswith("native[seq]") and "{" in line)


@pytest.mark.slow
def test_the_hugging_face_example_runs_as_a_script(tmp_path):
    """GPT-2 of docs/models.md: as it is on torch (its cache named as left out, a prediction per position),
    then beside the native core, which reads it through torch.export and is batch invariant."""
    pytest.importorskip("transformers")
    (tmp_path / "gpt2.py").write_text(snippet("hugging-face"))
    done = run(["gpt2.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert table_batch_sizes(lines, "torch[cpu]")[:4] == [1, 2, 8, 64]
    assert any("12 predictions of 100 classes per row" in line and "DynamicCache" in line for line in lines)
    assert "batch invariant" in next(line for line in lines if line.startswith("native[seq]") and "{" in line)


@pytest.mark.slow
def test_the_onnx_example_runs_as_a_script(tmp_path):
    """The MLP of docs/models.md exported to ONNX and swept on ONNX Runtime with three sets of options, and
    read into the native core, which is batch invariant."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    (tmp_path / "onnx_model.py").write_text(snippet("onnx-model"))
    done = run(["onnx_model.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    noise, lines = [], done.stderr.splitlines()
    for i, line in enumerate(lines):
        speed = "the machine's speed changed during the sweep"  # the sweep's own warning on a busy machine
        if line.startswith("sweep: ") or speed in line or (i and speed in lines[i - 1] and line.startswith(" ")):
            continue
        noise.append(line)
    assert not noise, "the export printed to the console: " + "\n".join(noise[:10])
    lines = done.stdout.splitlines()
    for label in ("onnx[cpu]", "onnx[cpu,deterministic]", "onnx[cpu,opt=disabled]", "native[seq]"):
        assert table_batch_sizes(lines, label) == [1, 2, 8, 64, 256], label
    assert "batch invariant" in next(line for line in lines if line.startswith("native[seq]") and "{" in line)


@pytest.mark.slow
def test_the_jax_example_runs_as_a_script(tmp_path):
    """The JAX function of docs/models.md, jitted and op by op, its compilation at B=1 reported."""
    pytest.importorskip("jax")
    (tmp_path / "jax_model.py").write_text(snippet("jax-model"))
    done = run(["jax_model.py"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for label in ("jax[cpu]", "jax[cpu,eager]"):
        assert table_batch_sizes(lines, label) == [1, 2, 8, 64, 256], label
    assert float(lines[-1].split()[-2]) > 0, lines[-1]


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_audit_snippet_runs_as_a_script_on_a_local_ray(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("ray")
    (tmp_path / "audit.py").write_text(snippet("audit"))
    # RAY_ADDRESS=local: a new local Ray, never the cluster another test may have started on this machine
    done = subprocess.run([sys.executable, "audit.py"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "PYTHONPATH": "", "RAY_ADDRESS": "local"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "native[seq]: one class on every node at every B" in done.stdout, done.stdout
    assert bc_audit_nodes(tmp_path / "audit.json") == 1


def bc_audit_nodes(path):
    import json

    return len(json.loads(path.read_text())["nodes"])
