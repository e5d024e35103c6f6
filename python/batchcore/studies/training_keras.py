"""The training study's measurements (:mod:`batchcore.studies.training`) for a Keras 3 model on TensorFlow:
test accuracy, one step's gradient against accumulated steps (``tf.GradientTape``, sparse categorical
cross-entropy from the logits), and BatchNormalization in training and inference mode. The network is
the user's; ``train`` (theirs too, typically ``model.fit``) trains it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from ..results import numerics


def _tf() -> Any:
    import keras

    if keras.config.backend() != "tensorflow":
        raise MissingDependencyError(f"the training study computes a Keras model's gradients with TensorFlow; Keras runs "
                                     f"on {keras.config.backend()} here")
    import tensorflow as tf

    return tf


def _copy(net: Any, dtype: str | None = None) -> Any:
    """A copy of ``net`` with its weights (cast to ``dtype`` where given: every layer computes in it)."""
    import keras

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if dtype is not None:
            config["dtype"] = dtype
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(net, clone_function=clone)
    with warnings.catch_warnings():  # Keras reads variables through an __array__ numpy 2 warns of
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        copy.set_weights([w.astype(dtype) if dtype else w for w in net.get_weights()])
    return copy


def test_accuracy(net: Any, x: Any, y: Any) -> float:
    logits = np.asarray(net(np.asarray(x), training=False))
    return float((logits.argmax(1) == np.asarray(y)).mean())


def _gradient(tf: Any, model: Any, x: np.ndarray, y: np.ndarray, chunks: int) -> np.ndarray:
    """The gradient of the mean cross-entropy over x, as ``chunks`` accumulated steps (each loss / chunks)."""
    total: list[Any] = []
    for xs, ys in zip(np.array_split(x, chunks), np.array_split(y, chunks), strict=True):
        with tf.GradientTape() as tape:
            logits = model(xs, training=True)
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(ys, logits, from_logits=True)) / chunks
        grads = tape.gradient(loss, model.trainable_variables)
        total = list(grads) if not total else [a + b for a, b in zip(total, grads, strict=True)]
    return np.concatenate([np.asarray(g).ravel() for g in total])


def accumulation(net: Any, x: Any, y: Any, steps: int) -> dict[str, Any]:
    tf = _tf()
    x, y = np.asarray(x), np.asarray(y)
    one, acc = _gradient(tf, net, x, y, 1), _gradient(tf, net, x, y, steps)
    ref = _gradient(tf, _copy(net, "float64"), x.astype(np.float64), y, 1)

    def rel(g: np.ndarray) -> float:
        return float(np.linalg.norm(g.astype(np.float64) - ref) / np.linalg.norm(ref))

    return {"rows": len(x), "steps": steps, "elements": int(one.size),
            "equal_frac": numerics.bitwise_equal_frac(one, acc), "max_ulp": numerics.max_ulp(one, acc),
            "one_step_rel_err_vs_f64": rel(one), "accumulated_rel_err_vs_f64": rel(acc)}


def batchnorm_outputs(net: Any, x: Any, mode: str, sizes: list[int]) -> dict[int, np.ndarray]:
    """Per B the logits over x in batches of B, in training mode (batch statistics; a copy runs, so the
    moving statistics of ``net`` are untouched) or inference mode."""
    model = _copy(net) if mode == "train" else net
    x = np.asarray(x)
    return {B: np.concatenate([np.asarray(model(x[i:i + B], training=mode == "train")) for i in range(0, len(x), B)])
            for B in sizes}


NOTE = ("Accumulation: each of the k losses is divided by k (a power of two here, so exactly) and the k gradients "
        "(tf.GradientTape) are added in float32; relative errors: ||g - g64|| / ||g64|| over all trainable weights, "
        "g64 the same step with the model copied in float64.")
