"""The type stubs of the compiled extensions name what the extensions export, no more and no less."""

import ast
import importlib
import pathlib

import pytest

SOURCE = pathlib.Path(__file__).resolve().parent.parent / "python" / "batchcore"


def stub_names(module: str) -> dict:
    tree = ast.parse((SOURCE / f"{module}.pyi").read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} if isinstance(node, ast.ClassDef) else None
            names[node.name] = members
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id != "__all__":
            names[node.target.id] = None  # a module attribute: _core.testing, __version__
    return names


@pytest.mark.parametrize("module", ["_core", "_cuda"])
def test_stub_names_match_the_extension(module):
    if module == "_cuda" and importlib.import_module("batchcore.info").cuda_module() is None:
        pytest.skip("built without CUDA")
    ext = importlib.import_module(f"batchcore.{module}")
    stubs = stub_names(module)
    public = {n for n in dir(ext) if not n.startswith("_")}
    assert {n for n in stubs if not n.startswith("_")} == public
    assert all(hasattr(ext, n) for n in stubs)
    for name, members in stubs.items():
        if members:
            named = {m for m in members if not m.startswith("_")}
            real = {m for m in dir(getattr(ext, name)) if not m.startswith("_")}
            assert named <= real, f"{name}: the stub names {sorted(named - real)}, which it lacks"
    assert (SOURCE / "py.typed").exists()
