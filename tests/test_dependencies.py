"""Every import the package makes at run time is the standard library, a declared dependency, or an
optional extra imported inside a function (so that its absence raises MissingDependencyError there);
and every declared dependency is used."""

import ast
import pathlib
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "batchcore"
# distribution name -> module names it provides
PROVIDES = {"numpy": {"numpy"}, "scipy": {"scipy"}, "torch": {"torch"}, "cupy-cuda13x": {"cupy", "cupyx"},
            "threadpoolctl": {"threadpoolctl"}, "scikit-learn": {"sklearn"}, "rich": {"rich"},
            "matplotlib": {"matplotlib"}, "pandas": {"pandas"}, "keras": {"keras"},
            "tensorflow-cpu": {"tensorflow"}, "tensorflow": {"tensorflow"}, "transformers": {"transformers"},
            "onnxruntime": {"onnxruntime"}, "onnx": {"onnx"}, "onnxscript": {"onnxscript"},
            "jax": {"jax"}, "ray": {"ray"}}


def declared():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda req: req.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()  # noqa: E731
    required = {name(r) for r in project["dependencies"]}
    extras = {e: {name(r) for r in reqs} for e, reqs in project.get("optional-dependencies", {}).items()}
    return required, extras


def imports():
    """(module, top-level name, at module level?) for every absolute import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for n in names:
                found.append((str(path.relative_to(PACKAGE)), n.split(".")[0], id(node) in top_level))
    return found


def test_every_import_is_declared_or_an_optional_extra_imported_lazily():
    required, extras = declared()
    required_modules = set().union(*(PROVIDES[d] for d in required))
    optional_modules = set().union(*(PROVIDES[d] for e, ds in extras.items() if e != "test" for d in ds))
    for module, name, top in imports():
        if name in sys.stdlib_module_names or name == "batchcore":
            continue
        if name in required_modules:
            continue
        assert name in optional_modules, f"{module} imports {name}, which pyproject.toml does not declare"
        assert not top, f"{module} imports the optional {name} at module level: import batchcore would fail without it"


def test_every_declared_dependency_is_used():
    required, _ = declared()
    used = {name for _, name, _ in imports()}
    for dist in required:
        assert PROVIDES[dist] & used, f"{dist} is declared but never imported"


def test_importing_batchcore_imports_no_framework():
    """``import batchcore`` loads no framework: each is imported by the function that needs it (what
    ``python -X importtime`` lists is every module the import loaded)."""
    import subprocess

    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import batchcore"], capture_output=True, text=True,
                          check=True)
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "batchcore" in loaded and "numpy" in loaded  # the listing is read as meant
    assert not loaded & {"torch", "tensorflow", "keras", "jax", "onnxruntime", "onnx", "transformers", "cupy", "pandas",
                         "matplotlib", "ray"}


def test_the_keras_extra_pulls_no_torch_and_no_cuda_build():
    """The keras extra is Keras 3 on TensorFlow's CPU build (pinned): nothing in it names torch, a CUDA extra
    or an unpinned TensorFlow that could resolve to another build."""
    _, extras = declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["optional-dependencies"]["keras"]
    assert extras["keras"] == {"keras", "tensorflow-cpu", "tensorflow"}
    assert not any("torch" in r or "cuda" in r.lower() or "[" in r.split(";")[0] for r in reqs)
    assert all("==2.21.0" in r for r in reqs if r.startswith("tensorflow"))


def test_the_hf_extra_pulls_no_torch():
    """transformers alone: the torch the user installed (the torch extra's, 2.13.0) stays the only one."""
    _, extras = declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["hf"] == {"transformers"}
    assert not any("torch" in r or "[" in r for r in project["optional-dependencies"]["hf"])


def test_the_onnx_extra_is_onnx_runtimes_cpu_build_and_pulls_no_torch():
    _, extras = declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["onnx"] == {"onnxruntime", "onnx", "onnxscript"}
    assert not any("torch" in r or "gpu" in r or "[" in r for r in project["optional-dependencies"]["onnx"])


def test_the_jax_extra_is_the_cpu_build():
    _, extras = declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["jax"] == {"jax"}
    assert not any("cuda" in r or "tpu" in r or "torch" in r or "[" in r for r in project["optional-dependencies"]["jax"])


def test_the_ray_extra_is_rays_cpu_package_and_pulls_no_torch():
    """Ray alone (its base package: the CPU scheduler and object store, no [default] dashboard, no GPU
    libraries): the torch the user installed stays the only one."""
    _, extras = declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["ray"] == {"ray"}
    assert not any("torch" in r or "cuda" in r or "[" in r for r in project["optional-dependencies"]["ray"])
