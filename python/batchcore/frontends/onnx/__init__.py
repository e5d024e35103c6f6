"""ONNX's frontend: an ONNX model (a ``.onnx`` file or an ``onnx.ModelProto``) read into a native graph
(:mod:`.graph`, ``bc.from_onnx``) or wrapped as it is (:mod:`.module`), for ONNX Runtime's backend;
``bc.export_onnx`` writes a torch module as one (:mod:`.export`). onnx is imported only when a model is
read, wrapped or written; an object is recognised as an ONNX model without importing it."""

from __future__ import annotations

from typing import Any

from ...model.chain import Model
from ...model.graph import GraphModel
from .export import export_onnx
from .graph import from_onnx
from .module import OnnxModule, import_onnx, is_onnx_object

__all__ = ["OnnxFrontend", "OnnxModule", "export_onnx", "from_onnx", "import_onnx", "is_onnx_object"]


class OnnxFrontend:
    """Claims paths ending in ``.onnx`` and ``onnx.ModelProto`` objects."""

    name = "onnx"
    reader = "bc.from_onnx"
    backends_hint = "backends=[bc.onnx()]"

    def claims(self, obj: Any) -> bool:
        return is_onnx_object(obj)

    def read(self, obj: Any, sample_shape: tuple[int, ...] | None, dtype: str) -> Model | GraphModel:
        return from_onnx(obj, input_shape=sample_shape)

    def wrap(self, obj: Any) -> OnnxModule:
        return OnnxModule(obj)
