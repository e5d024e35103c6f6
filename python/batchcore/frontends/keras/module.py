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
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import DTypeError, MissingDependencyError, NonFiniteError, ShapeError
from ...model.opaque import FLOAT_FORMATS, OpaqueModel, Output, Outputs, as_output, flatten_outputs, format_of


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


@dataclass(frozen=True)
class KerasInputs:
    """The user's data, checked, as Keras takes it: ``arrays`` (numpy, rows first), in the structure they
    came in (``keys`` for a dict, ``single`` for one array, else a list)."""

    arrays: tuple[np.ndarray, ...]
    keys: tuple[str, ...] | None = None
    single: bool = True

    def feed(self) -> Any:
        """What ``model.predict`` and ``model(...)`` are given: an array, a list or a dict of arrays."""
        if self.keys is not None:
            return dict(zip(self.keys, self.arrays, strict=True))
        return self.arrays[0] if self.single else list(self.arrays)

    @property
    def rows(self) -> int:
        return len(self.arrays[0])

    def part(self, index: Any) -> KerasInputs:
        """The rows at ``index`` (a slice or an array of indices) of every input, contiguous."""
        return KerasInputs(tuple(np.ascontiguousarray(a[index]) for a in self.arrays), self.keys, self.single)


def _dtype_name(a: np.ndarray) -> str:
    return a.dtype.name  # ml_dtypes' bfloat16 is named "bfloat16"


def _expected_dtypes(model: Any) -> list[str] | None:
    """The dtypes of the model's inputs, where it declares them (a built functional or Sequential model)."""
    try:
        return [str(t.dtype) for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        return None


def _as_array(part: Any, where: str) -> np.ndarray:
    if isinstance(part, np.ndarray):
        return part
    if hasattr(part, "numpy") and hasattr(part, "dtype") and hasattr(part, "shape"):  # an eager tf.Tensor
        return np.asarray(part.numpy())
    raise DTypeError(f"{where} must be a numpy array (or a TensorFlow tensor), got {type(part).__name__}")


class KerasModule(OpaqueModel):
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

    def inputs(self, data: Any) -> KerasInputs:
        """The user's data checked: numpy arrays (or eager TensorFlow tensors, taken as numpy of the same
        dtype) sharing their first dimension; a floating input in float32, float16 or bfloat16, finite, of
        the dtype of the model's input where the model declares one; integer inputs (token ids) as given."""
        if isinstance(data, KerasInputs):
            return data
        if isinstance(data, dict):
            if not data or not all(isinstance(k, str) for k in data):
                raise ShapeError("dict data must map the model's input names (strings) to arrays")
            keys: tuple[str, ...] | None = tuple(data)
            parts, single = list(data.values()), False
        else:
            keys, single = None, not isinstance(data, (tuple, list))
            parts = [data] if single else list(data)
        if not parts:
            raise ShapeError("data is empty: pass an array (or a list or dict of them) whose first dimension is the batch")
        expected = _expected_dtypes(self.model) if keys is None else None
        arrays = []
        for i, part in enumerate(parts):
            where = "data" if single else f"data[{keys[i]!r}]" if keys else f"data[{i}]"
            a = _as_array(part, where)
            if a.ndim == 0 or a.shape[0] == 0:
                raise ShapeError(f"{where} has shape {a.shape}: its first dimension is the batch and must hold rows")
            name = _dtype_name(a)
            want = expected[i] if expected is not None and len(expected) == len(parts) else None
            floating = name in ("float16", "float32", "bfloat16", "float64")
            if floating:
                if name == "float64" or (want is not None and want != name and "float" in want):
                    raise DTypeError(f"{where} is {name} but {self.name} takes {want or 'float32'}; batchcore does not "
                                     f"convert inputs (Keras would, silently): pass {where}.astype('{want or 'float32'}')")
                if not np.isfinite(a.astype(np.float32) if name == "bfloat16" else a).all():
                    raise NonFiniteError(f"{where} contains NaN or Inf")
            elif a.dtype.kind not in "iub":
                raise DTypeError(f"{where} is {name}; Keras models here take numbers: floating or integer arrays")
            arrays.append(a)
        rows = {len(a) for a in arrays}
        if len(rows) > 1:
            raise ShapeError(f"the inputs' first dimensions differ ({sorted(rows)}): each is the batch")
        return KerasInputs(tuple(arrays), keys, single)

    def count(self, inputs: KerasInputs) -> int:
        return inputs.rows

    def rows(self, inputs: KerasInputs, start: int, stop: int) -> KerasInputs:
        return inputs.part(slice(start, stop))

    def take(self, inputs: KerasInputs, indices: np.ndarray) -> KerasInputs:
        return inputs.part(indices)

    def inputs_digest(self, inputs: KerasInputs) -> str:
        h = hashlib.sha256()
        for key, a in zip(inputs.keys or range(len(inputs.arrays)), inputs.arrays, strict=True):
            h.update(f"{key}:{_dtype_name(a)}:{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def outputs_of(result: Any, rows: int) -> Outputs:
    """What a Keras model returned (from ``predict``: numpy arrays; from a call: the backend's tensors), each
    as an Output in its own format; the structure (list, dict) names them."""
    keras = import_keras()

    def leaf(obj: Any, name: str) -> Output | None:
        if not (isinstance(obj, np.ndarray) or keras.ops.is_tensor(obj)):
            return None
        values = to_numpy(keras, obj)
        dtype = _dtype_name(values)
        # bfloat16 as float32: exact (bfloat16 is float32 with 16 fewer mantissa bits)
        return as_output(name, values.astype(np.float32) if dtype == "bfloat16" else values, dtype, rows)

    return flatten_outputs(result, rows, leaf, "Keras")
