"""Keras models for the Keras tests, and what the tests recompute with Keras's own plain loop. Keras is
imported by the fixture that asks for it (TensorFlow takes seconds to import: only the worker that runs
these tests pays it)."""

from __future__ import annotations

import os

import numpy as np


def import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices, not the tests' output
    import keras

    return keras


def wide_mlp(keras, seed=0, width=256, hidden=512, classes=10):
    """A Dense(hidden, relu) -> Dense(classes, softmax) model: wide enough that TensorFlow's CPU matmul
    takes other orders at other batch sizes (on the machines seen; the tests never rely on it)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((width,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(classes, activation="softmax")], name="wide_mlp")


def plain_loop(model, x, batch_size, mode):
    """The model's outputs the way a user gets them: ``model.predict(x, batch_size=B)``, or direct calls
    on consecutive batches of B rows."""
    if mode == "predict":
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    return np.concatenate([np.asarray(model(x[i : i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def ordered(values):
    """Floats as integers in the order of the values (+0 and -0 one integer): the distance of two is
    their distance in ULPs. Written here from the IEEE layout, not from batchcore."""
    bits = {2: np.int16, 4: np.int32}[values.dtype.itemsize]
    i = np.ascontiguousarray(values).view(bits).astype(np.int64)
    sign = np.int64(1) << (8 * values.dtype.itemsize - 1)
    return np.where(i < 0, -(i + sign), i)


def max_ulp(a, b):
    return int(np.abs(ordered(a) - ordered(b)).max()) if a.size else 0


def assert_batch_invariant(read, x):
    """Rows 0, the middle and the last alone equal the same rows in batches of 2, 17 and 64 at three
    positions, on 1 and 2 threads of the native core."""
    import batchcore as bc

    n, picks = len(x), [0, len(x) // 2, len(x) - 1]
    for threads in (1, 2):
        backend = bc.native(threads=threads)
        alone = {i: backend.run(read, x[i : i + 1])[0] for i in picks}
        for B in (2, 17, 64):
            for start in (0, n // 2 - B // 2, n - B):
                batch = backend.run(read, x[start : start + B])
                for i in set(picks) & set(range(start, start + B)):
                    assert np.array_equal(batch[i - start].view(np.uint32), alone[i].view(np.uint32)), (threads, B, i)
