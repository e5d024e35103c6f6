"""Keras's frontend: a Keras 3 model read into a chain (:mod:`.chain`) or wrapped as it is (:mod:`.module`),
on whichever backend Keras is configured with (TensorFlow, JAX or PyTorch). Keras is imported only when
a model is read or wrapped; an object is recognised as a Keras model without importing it."""

from __future__ import annotations

import sys
from typing import Any

from ...errors import ArgumentError, MissingDependencyError
from ...model.chain import Model
from ...model.graph import GraphModel
from .chain import from_keras
from .module import KerasModule, import_keras

__all__ = ["KerasFrontend", "KerasModule", "from_keras", "import_keras", "is_keras_object"]


def _keras_2_class(obj: Any) -> str | None:
    """The Keras 2 (``tf_keras``, or ``tf.keras`` of TensorFlow < 2.16) class ``obj`` is an instance of, if any."""
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        if module.startswith(("tf_keras.", "keras.engine.", "tensorflow.python.keras.", "keras.src.engine.")):
            return f"{module}.{cls.__qualname__}"
    return None


def is_keras_object(obj: Any) -> bool:
    """Whether ``obj`` is a Keras layer or model (Keras 3, or Keras 2 to be refused by name). A Keras
    object exists only once Keras is imported, so nothing is imported to tell."""
    keras = sys.modules.get("keras")
    layer = getattr(getattr(keras, "layers", None), "Layer", None)
    return (isinstance(layer, type) and isinstance(obj, layer)) or _keras_2_class(obj) is not None


class KerasFrontend:
    """Claims Keras layers and models (before PyTorch's frontend, which claims any callable)."""

    name = "keras"
    reader = "bc.from_keras"
    backends_hint = "backends=[bc.keras()]"

    def claims(self, obj: Any) -> bool:
        return is_keras_object(obj)

    def read(self, obj: Any, sample_shape: tuple[int, ...] | None, dtype: str) -> Model | GraphModel:
        _refuse_keras_2(obj)
        return from_keras(obj, input_shape=sample_shape)

    def wrap(self, obj: Any) -> KerasModule:
        _refuse_keras_2(obj)
        keras = import_keras()
        if not isinstance(obj, keras.Model):
            raise ArgumentError(f"{obj.name!r} is a Keras {type(obj).__name__} layer, not a model: batchcore runs models "
                                f"(wrap it: keras.Sequential([keras.Input(shape), layer]))")
        return KerasModule(obj)


def _refuse_keras_2(obj: Any) -> None:
    found = _keras_2_class(obj)
    if found is not None:
        raise MissingDependencyError(f"the model is a Keras 2 object ({found}); batchcore runs Keras 3 models "
                                     "(TensorFlow >= 2.16 ships Keras 3; tf_keras models are not supported)")
