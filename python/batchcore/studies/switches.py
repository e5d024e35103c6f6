"""Study 6: do the frameworks' determinism switches make the batch size stop mattering?

TensorFlow's ``tf.config.experimental.enable_op_determinism()`` promises the same result for the same
inputs on the same hardware, run after run; it says nothing about the batch size. oneDNN, on by default
on x86 since TensorFlow 2.9, "may give slightly different numerical results due to different computation
orders" (``TF_ENABLE_ONEDNN_OPTS=0`` turns it off; TensorFlow reads it once, at import). PyTorch's
``torch.use_deterministic_algorithms(True)`` refuses nondeterministic kernels. ONNX Runtime's
``use_deterministic_compute`` promises run-to-run equality; its graph optimisations rewrite the graph
(fusions, layout changes). XLA's CPU flags choose its threading (``--xla_cpu_multi_thread_eigen``), its
XNNPACK kernels (``--xla_cpu_use_xnnpack``) and its optimisation level (``--xla_backend_optimization_level``).
The study measures, per switch setting, what a sweep measures: the invariance classes across batch
sizes, the share of output bits equal to B=1's and the largest ULP distance to it.

A Keras model runs each setting in a fresh Python process (the only way to set oneDNN; op determinism
cannot be turned off once on): the model is saved with ``model.save`` and loaded there, the data with
it. A JAX model too (XLA reads ``XLA_FLAGS`` once, when JAX starts): a spawned process per setting,
to which ``fn`` goes by pickle (a function defined at a module's top level; a script that makes one needs
the usual ``if __name__ == "__main__":`` guard). A torch module and an ONNX model run each setting in
this process (torch's flag set for the setting and restored after; a new ONNX Runtime session each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend
from ..errors import ArgumentError, BatchcoreError, MissingDependencyError
from ..frontends import frontend_of
from ..info import info
from ..present.progress import Steps
from ..run.sweep import check_batch_sizes, sweep
from .record import Study, Table
from .switch_child import BRIEF, jax_setting

QUESTION = "Do the frameworks' determinism switches make a model's outputs independent of the batch size?"
# Each setting: its name, the environment it runs under (Keras: a process of its own), op determinism on?
KERAS_SETTINGS = [("oneDNN on (TensorFlow's default)", {"TF_ENABLE_ONEDNN_OPTS": "1"}, False),
                  ("oneDNN on + op determinism", {"TF_ENABLE_ONEDNN_OPTS": "1"}, True),
                  ("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, False),
                  ("oneDNN off + op determinism", {"TF_ENABLE_ONEDNN_OPTS": "0"}, True)]
TORCH_SETTINGS = [("default", False), ("use_deterministic_algorithms(True)", True)]
# ONNX Runtime: each setting the ONNX backend's keyword arguments.
ONNX_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("all graph optimizations (ORT's default)", {}), ("use_deterministic_compute", {"deterministic": True}),
    ("graph optimizations off", {"optimization": "disabled"}),
    ("graph optimizations off + use_deterministic_compute", {"optimization": "disabled", "deterministic": True})]
# XLA on the CPU: the flags added to XLA_FLAGS (--xla_gpu_deterministic_ops applies to GPUs, which the JAX
# backend does not run yet).
XLA_SETTINGS = [("XLA's default", ""), ("--xla_cpu_multi_thread_eigen=false", "--xla_cpu_multi_thread_eigen=false"),
                ("--xla_cpu_use_xnnpack=false", "--xla_cpu_use_xnnpack=false"),
                ("--xla_backend_optimization_level=0", "--xla_backend_optimization_level=0")]
SETTINGS: dict[str, list[Any]] = {"keras": KERAS_SETTINGS, "torch": TORCH_SETTINGS, "onnx": ONNX_SETTINGS,
                                 "jax": XLA_SETTINGS}
CHILD_TIMEOUT_S = 900


def switches_settings(framework: str) -> list[tuple[str, Any]]:
    """The settings the study runs for a framework ("keras", "torch", "onnx", "jax"): (name, what it sets)."""
    if framework not in SETTINGS:
        raise ArgumentError(f"the switches study knows the frameworks {', '.join(SETTINGS)}, not {framework!r}")
    return [(s[0], s[1]) for s in SETTINGS[framework]]


def classes_of(points: list[dict[str, Any]]) -> list[list[int]]:
    """Batch sizes grouped by identical output bits (their fingerprints), in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for p in points:
        groups.setdefault(p["fingerprint"], []).append(p["batch_size"])
    return list(groups.values())


def summary(name: str, points: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """One setting's figures: its classes, least share of bits equal to B=1's, largest ULP distance, points."""
    return {"setting": name, "classes": classes_of(points),
            "min_bitwise_equal_frac": min(p["bitwise_equal_frac"] for p in points),
            "max_ulp_vs_b1": max(p["max_ulp_vs_b1"] for p in points), "points": points, "backend_settings": settings}


def _keras_settings(model: Any, data: np.ndarray, sizes: list[int], mode: str, steps: Steps) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="batchcore-switches-") as tmp:
        try:
            with warnings.catch_warnings():  # Keras's saving reads its variables through an __array__ numpy 2 warns of
                warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
                model.save(os.path.join(tmp, "model.keras"))
        except Exception as e:
            raise ArgumentError(f"the switches study runs each setting in a process of its own and needs a model Keras "
                                f"can save and load (model.save): {type(e).__name__}: {e}") from e
        np.save(os.path.join(tmp, "data.npy"), data, allow_pickle=False)
        found = []
        for name, env, determinism in KERAS_SETTINGS:
            steps.now(name)
            request = {"sizes": sizes, "mode": mode, "op_determinism": determinism}
            Path(tmp, "request.json").write_text(json.dumps(request))
            child_env = {**os.environ, **env}
            done = subprocess.run([sys.executable, "-m", "batchcore.studies.switch_child", tmp], env=child_env,
                                  capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-8:])
                raise BatchcoreError(f"the setting {name!r} failed in its process (exit {done.returncode}):\n{tail}")
            answer = json.loads(Path(tmp, "answer.json").read_text())
            found.append(summary(name, answer["points"], answer["settings"]))
            steps.done()
        return found


def _torch_settings(module: Any, data: Any, sizes: list[int], backend: Backend, steps: Steps) -> list[dict[str, Any]]:
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    found = []
    try:
        for name, deterministic in TORCH_SETTINGS:
            steps.now(name)
            torch.use_deterministic_algorithms(deterministic)
            res = sweep(module, sizes, backends=[backend], data=data, timer=BRIEF, rounds=1, ceilings=False, progress=False)
            found.append(summary(name, res.points, {**backend.settings(), "deterministic_algorithms": deterministic}))
            steps.done()
    finally:
        torch.use_deterministic_algorithms(was)
    return found


def _onnx_settings(model: Any, data: Any, sizes: list[int], steps: Steps) -> list[dict[str, Any]]:
    from ..backends import onnx as onnx_backend

    found = []
    for name, options in ONNX_SETTINGS:
        steps.now(name)
        backend = onnx_backend(**options)
        res = sweep(model, sizes, backends=[backend], data=data, timer=BRIEF, rounds=1, ceilings=False, progress=False)
        found.append(summary(name, res.points, backend.settings()))
        steps.done()
    return found


def _jax_settings(model: Any, data: Any, sizes: list[int], steps: Steps) -> list[dict[str, Any]]:
    import multiprocessing
    import pickle

    from ..frontends.jax.module import import_jax

    params = import_jax().tree_util.tree_map(np.asarray, model.params)
    try:
        payload = pickle.dumps((model.fn, params, model.name))
    except Exception as e:
        raise ArgumentError(f"the switches study runs each XLA setting in a fresh process and sends {model.name} there "
                            f"by pickle: fn must be a function defined at a module's top level ({type(e).__name__}: "
                            f"{e})") from e
    user_flags, found = os.environ.get("XLA_FLAGS"), []
    try:
        for name, flags in XLA_SETTINGS:
            steps.now(name)
            os.environ["XLA_FLAGS"] = " ".join(f for f in (user_flags or "", flags) if f)  # the spawned process's
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                try:
                    points, settings = pool.apply_async(jax_setting, (payload, data, sizes)).get(CHILD_TIMEOUT_S)
                except Exception as e:
                    raise BatchcoreError(f"the setting {name!r} failed in its process: {type(e).__name__}: {e}") from e
            found.append(summary(name, points, settings))
            steps.done()
    finally:
        if user_flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = user_flags
    return found


def switches(model: Any, data: Any, batch_sizes: Any = (1, 2, 8, 64), mode: str = "predict",
             progress: bool | None = None) -> Study:
    """Study 6 on ``model`` (a Keras model, an ONNX model, a ``bc.jax_model``, or a torch module or
    callable) over ``data`` (rows first, in the model's dtype): for each setting of its framework's switches
    (Keras on TensorFlow: oneDNN on and off, each with op determinism off and on; torch:
    ``use_deterministic_algorithms`` off and on; ONNX Runtime: graph optimisations on and off, each with
    ``use_deterministic_compute`` off and on; XLA: its default and three CPU flags, one at a time), the
    invariance classes across ``batch_sizes``, the smallest share of output bits equal to B=1's and the
    largest ULP distance to B=1. ``mode``: the Keras backend's ("predict" or "call"). Each point is timed
    briefly; ``study.data["settings"]`` holds every setting's points."""
    from ..backends import keras as keras_backend
    from ..backends import torch as torch_backend

    sizes = check_batch_sizes(batch_sizes)
    sizes = [1] + [B for B in sizes if B != 1]
    framework = "jax" if getattr(model, "framework", None) == "jax" else frontend_of(model).name
    backend: Backend
    with Steps("switches study", len(SETTINGS[framework]), progress) as steps:
        if framework == "jax":
            found = _jax_settings(model, data, sizes, steps)
        elif framework == "onnx":
            found = _onnx_settings(model, data, sizes, steps)
        elif framework == "keras":
            backend = keras_backend(mode)
            if backend.keras_backend != "tensorflow":
                raise MissingDependencyError(f"the switches study measures TensorFlow's switches; Keras runs on "
                                             f"{backend.keras_backend} here")
            if not isinstance(data, np.ndarray):
                raise ArgumentError("the switches study of a Keras model takes data as one numpy array (rows first)")
            backend.run_module(frontend_of(model).wrap(model), data[:1], 1)  # the data checked before any process starts
            found = _keras_settings(model, data, sizes, mode, steps)
        else:
            backend = torch_backend(measure_memory=False)
            found = _torch_settings(model, data, sizes, backend, steps)
    return Study("switches", QUESTION, verdict(found), tables(found), notes(framework, len(data)),
                 {"framework": framework, "batch_sizes": sizes, "settings": found}, info())


def _classes_text(classes: list[list[int]]) -> str:
    return "batch invariant" if len(classes) == 1 else " ".join("{" + ", ".join(map(str, c)) + "}" for c in classes)


def verdict(found: list[dict[str, Any]]) -> str:
    invariant = [s["setting"] for s in found if len(s["classes"]) == 1]
    parts = [f"{s['setting']}: {len(s['classes'])} class{'es' if len(s['classes']) > 1 else ''} "
             f"({_classes_text(s['classes'])}), up to {s['max_ulp_vs_b1']} ULP from B=1" for s in found]
    if not invariant:
        head = "No setting of the switches makes the outputs batch invariant"
    elif len(invariant) == len(found):
        head = "Every setting gives the same bits at every batch size"
    else:
        head = f"Only {', '.join(invariant)} give{'s' if len(invariant) == 1 else ''} the same bits at every batch size"
    return head + ": " + "; ".join(parts) + "."


def tables(found: list[dict[str, Any]]) -> list[Table]:
    rows = [[s["setting"], _classes_text(s["classes"]), s["min_bitwise_equal_frac"], s["max_ulp_vs_b1"]] for s in found]
    per_point = [[s["setting"], p["batch_size"], p["bitwise_equal_frac"], p["max_ulp_vs_b1"], p["argmax_changed"],
                  p["time_ms"]] for s in found for p in s["points"]]
    return [Table("Invariance per setting", ["setting", "classes", "least =B1 bits", "max ULP vs B1"], rows),
            Table("Per batch size (time: a brief measurement, not a comparison)",
                  ["setting", "B", "=B1 bits", "ULP vs B1", "argmax changed", "time ms"], per_point)]


def notes(framework: str, rows: int) -> list[str]:
    how = {"keras": "each setting in a fresh process (TensorFlow reads TF_ENABLE_ONEDNN_OPTS at import), the model "
                    "saved and loaded with Keras",
           "jax": "each setting in a spawned process (XLA reads XLA_FLAGS when JAX starts), the flags added to the "
                  "user's XLA_FLAGS",
           "onnx": "each setting a new ONNX Runtime session in this process"}.get(
        framework, "each setting in this process, the flag restored after")
    return [f"{rows} rows in consecutive batches of B, the last shorter; {how}.",
            "Classes group batch sizes whose outputs have identical bits; the settings each run records are in "
            "data['settings'][i]['backend_settings']."]
