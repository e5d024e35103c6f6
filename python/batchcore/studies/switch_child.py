"""One setting of the switches study (:mod:`batchcore.studies.switches`) in a process of its own:
``python -m batchcore.studies.switch_child DIR`` loads DIR/model.keras and DIR/data.npy, turns op
determinism on when DIR/request.json asks (oneDNN comes from the environment, read by TensorFlow at
import), sweeps the batch sizes through Keras and writes DIR/answer.json: the points and the backend's
settings (which say whether oneDNN and op determinism were on)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(folder: str) -> None:
    import keras
    import tensorflow as tf

    from .. import backends, files
    from ..run.sweep import sweep
    from .switches import BRIEF

    request = json.loads(Path(folder, "request.json").read_text())
    if request["op_determinism"]:
        tf.config.experimental.enable_op_determinism()
    model = keras.models.load_model(Path(folder, "model.keras"), compile=False)
    data = np.load(Path(folder, "data.npy"), allow_pickle=False)
    backend = backends.keras(request["mode"])
    res = sweep(model, request["sizes"], backends=[backend], data=data, timer=BRIEF, rounds=1, progress=False)
    files.atomic_write(Path(folder, "answer.json"), json.dumps(files.json_safe({"points": res.points,
                                                                               "settings": backend.settings()})))


if __name__ == "__main__":
    main(sys.argv[1])
