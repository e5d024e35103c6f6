"""A Keras 3 model run as it is (an :class:`~batchcore.model.opaque.OpaqueModel`): inputs of any shape
whose first dimension is the batch (one array, a list or tuple of them in the model's input order, or a
dict by input name: images NHWC, token ids, several inputs), outputs an array, a list or a dict of them,
each compared in its own format (float32, float16, bfloat16; mixed-precision policies included).

batchcore converts nothing: the Keras backends (:mod:`batchcore.backends.keras_backend`) hand the user's
arrays to ``model.predict`` or ``model(...)``; a floating input of another format than the model's input
says so (DTypeError) instead of being cast. Keras is imported only when called.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np

from ...errors import DTypeError, MissingDependencyError
from ...model.array_inputs import ArrayInputs, ArrayModel, array_inputs, dtype_name
from ...model.opaque import FLOAT_FORMATS, Output, Outputs, as_output, flatten_outputs, format_of


def import_keras() -> Any:
    """The keras module (Keras 3), or MissingDependencyError saying how to install it."""
    try:
        import keras
    except ImportError as e:
        raise MissingDependencyError('Keras is not installed; install batchcore with its keras extra: pip install '
                                     '"batchcore[keras]" (TensorFlow\'s CPU build with Keras 3)') from e
    if int(keras.__version__.split(".")[0]) < 3:
        raise MissingDependencyError(f"batchcore runs Keras 3 models; Keras {keras.__version__} is installed")
    return keras


def to_numpy(keras: Any, value: Any) -> np.ndarray:
    """A Keras variable or backend tensor as numpy, its dtype kept. A variable through its own ``numpy()``:
    Keras's ``convert_to_numpy`` of a variable goes through an ``__array__`` that numpy 2 warns of."""
    if isinstance(value, keras.Variable):
        return np.asarray(value.numpy())
    with warnings.catch_warnings():  # TensorFlow's bfloat16 tensors convert through an __array__ numpy 2 warns of
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning)
        return np.asarray(keras.ops.convert_to_numpy(value))


def folded_batch_norm(keras: Any, layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization layer in inference form, ``x * scale + shift``: folded in float64 from its
    moving statistics, gamma and beta (as ``from_torch`` folds BatchNorm), each rounded once to float32
    by the caller's check."""
    mean = to_numpy(keras, layer.moving_mean).astype(np.float64)
    var = to_numpy(keras, layer.moving_variance).astype(np.float64)
    g = to_numpy(keras, layer.gamma).astype(np.float64) if layer.scale else np.ones_like(mean)
    b = to_numpy(keras, layer.beta).astype(np.float64) if layer.center else np.zeros_like(mean)
    scale = g / np.sqrt(var + float(layer.epsilon))
    return scale, b - mean * scale


def _expected_dtypes(model: Any) -> list[str] | None:
    """The dtypes of the model's inputs, where it declares them (a built functional or Sequential model)."""
    try:
        return [str(t.dtype) for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        return None


class KerasModule(ArrayModel):
    """A Keras 3 model that batchcore runs as it is, through the Keras backends. ``dtype``: the format
    its layers compute in (the dtype policy's compute dtype: "fp32", "fp16" or "bf16")."""

    framework = "keras"

    def __init__(self, model: Any, name: str | None = None):
        self._keras = import_keras()
        self.model = model
        self.name = name or getattr(model, "name", None) or type(model).__name__
        compute = str(model.dtype_policy.compute_dtype)
        self.dtype = format_of(compute)
        if self.dtype not in FLOAT_FORMATS:
            raise DTypeError(f"{self.name} computes in {compute}; batchcore compares float32, float16 and bfloat16")

    def describe(self) -> dict[str, Any]:
        keras, m = self._keras, self.model
        try:
            params = int(m.count_params())
        except ValueError:  # a model not built yet has no weights to count
            params = 0
        return {"kind": "opaque module", "framework": "keras", "name": self.name, "class": type(m).__qualname__,
                "dtype": self.dtype, "dtype_policy": m.dtype_policy.name, "keras": keras.__version__,
                "keras_backend": keras.config.backend(), "parameters": params}

    def digest(self) -> str:
        """A hash of the model's class and every weight (path, dtype, shape, bits)."""
        h = hashlib.sha256(type(self.model).__qualname__.encode())
        for w in self.model.weights:
            values = np.ascontiguousarray(to_numpy(self._keras, w))
            h.update(f"{w.path}:{values.dtype.name}:{values.shape}".encode())
            h.update(values.tobytes())
        return h.hexdigest()[:16]

    def inputs(self, data: Any) -> ArrayInputs:
        """The user's data checked: numpy arrays (or eager TensorFlow tensors, taken as numpy of the same
        dtype) sharing their first dimension; a floating input in float32, float16 or bfloat16, finite, of
        the dtype of the model's input where the model declares one; integer inputs (token ids) as given."""
        expected = None if isinstance(data, dict) else _expected_dtypes(self.model)
        return array_inputs(data, self.name, "Keras", expected)


def outputs_of(result: Any, rows: int) -> Outputs:
    """What a Keras model returned (from ``predict``: numpy arrays; from a call: the backend's tensors), each
    as an Output in its own format; the structure (list, dict) names them."""
    keras = import_keras()

    def leaf(obj: Any, name: str) -> Output | None:
        if not (isinstance(obj, np.ndarray) or keras.ops.is_tensor(obj)):
            return None
        values = to_numpy(keras, obj)
        dtype = dtype_name(values)
        # bfloat16 as float32: exact (bfloat16 is float32 with 16 fewer mantissa bits)
        return as_output(name, values.astype(np.float32) if dtype == "bfloat16" else values, dtype, rows)

    return flatten_outputs(result, rows, leaf, "Keras")
