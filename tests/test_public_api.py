"""The public API: small, every name it lists exists, and ``from batchcore import *`` shadows nothing of
the user's (the backend factories ``bc.torch()``, ``bc.numpy()``, ``bc.cupy()`` stay attributes only)."""

import numpy as np

import batchcore as bc


def test_every_listed_name_exists_and_graph_models_are_exported():
    assert all(hasattr(bc, name) for name in bc.__all__)
    assert bc.GraphModel is type(bc.from_torch(__import__("torch").nn.Conv2d(1, 2, 3), input_shape=(1, 5, 5)))
    assert len(bc.__all__) <= 42  # 40, and since the fleet audit: audit and its result, Audit
    assert "ray_executor" not in bc.__all__ and callable(bc.ray_executor)  # a library's factory, as bc.torch()


def test_star_import_leaves_the_users_modules_alone():
    namespace = {"numpy": np, "torch": "the user's torch", "cupy": "the user's cupy"}
    exec("from batchcore import *", namespace)
    assert namespace["numpy"] is np and namespace["torch"] == "the user's torch" and namespace["cupy"] == "the user's cupy"
    assert callable(namespace["sweep"]) and callable(namespace["native"])


def test_the_version_is_pyprojects_compiled_into_the_core():
    from pathlib import Path

    import tomllib

    declared = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]["version"]
    assert bc.__version__ == declared == bc._core.__version__
