"""ONNX's frontend: an ONNX model (a ``.onnx`` file or an ``onnx.ModelProto``) wrapped as it is
(:mod:`.module`), for ONNX Runtime's backend; ``bc.export_onnx`` writes a torch module as one
(:mod:`.export`). onnx is imported only when a model is wrapped or written; an object is recognised as an
ONNX model without importing it."""

from __future__ import annotations

from typing import Any

from ...errors import UnsupportedLayerError
from ...model.chain import Model
from ...model.graph import GraphModel
from .export import export_onnx
from .module import OnnxModule, import_onnx, is_onnx_object

__all__ = ["OnnxFrontend", "OnnxModule", "export_onnx", "import_onnx", "is_onnx_object"]


class OnnxFrontend:
    """Claims paths ending in ``.onnx`` and ``onnx.ModelProto`` objects."""

    name = "onnx"
    reader = "bc.from_onnx"
    backends_hint = "backends=[bc.onnx()]"

    def claims(self, obj: Any) -> bool:
        return is_onnx_object(obj)

    def read(self, obj: Any, sample_shape: tuple[int, ...] | None, dtype: str) -> Model | GraphModel:
        raise UnsupportedLayerError("ONNX graphs are not read into the native core yet; ONNX Runtime runs them as "
                                    "they are (backends=[bc.onnx()])")

    def wrap(self, obj: Any) -> OnnxModule:
        return OnnxModule(obj)
