"""One setting of the switches study (:mod:`batchcore.studies.switches`) in a process of its own.

Keras: ``python -m batchcore.studies.switch_child DIR`` loads DIR/model.keras and DIR/data.npy, turns op
determinism on when DIR/request.json asks (oneDNN comes from the environment, read by TensorFlow at
import), sweeps the batch sizes through Keras and writes DIR/answer.json: the points and the backend's
settings (which say whether oneDNN and op determinism were on). JAX: :func:`jax_setting`, called in a
spawned process whose XLA_FLAGS the study set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..measure.timing import Timer

# The bits are what is on trial; each point is timed briefly (its time is shown, not compared).
BRIEF = Timer(min_time_s=0, timeout_s=0.2, target=0.5)


def main(folder: str) -> None:
    import keras
    import tensorflow as tf

    from .. import backends, files
    from ..run.sweep import sweep
    request = json.loads(Path(folder, "request.json").read_text())
    if request["op_determinism"]:
        tf.config.experimental.enable_op_determinism()
    model = keras.models.load_model(Path(folder, "model.keras"), compile=False)
    data = np.load(Path(folder, "data.npy"), allow_pickle=False)
    backend = backends.keras(request["mode"])
    res = sweep(model, request["sizes"], backends=[backend], data=data, timer=BRIEF, rounds=1, progress=False)
    files.atomic_write(Path(folder, "answer.json"), json.dumps(files.json_safe({"points": res.points,
                                                                               "settings": backend.settings()})))


def jax_setting(payload: bytes, data: Any, sizes: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A JAX model (``fn``, its parameters and name, pickled) swept over ``sizes`` under this process's
    XLA_FLAGS: the points (JSON-safe) and the backend's settings (which record the flags)."""
    import pickle

    from .. import backends, files
    from ..frontends.jax.module import JaxModel
    from ..run.sweep import sweep
    fn, params, name = pickle.loads(payload)
    backend = backends.jax()
    res = sweep(JaxModel(fn, params, name), sizes, backends=[backend], data=data, timer=BRIEF, rounds=1, progress=False)
    return files.json_safe(res.points), files.json_safe(backend.settings())


if __name__ == "__main__":
    main(sys.argv[1])
