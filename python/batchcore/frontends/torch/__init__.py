"""PyTorch's frontend: a module read into a chain (:mod:`.chain`) or a graph (through torch.fx:
:mod:`.fx_trace` drives :mod:`.fx_ops` and :mod:`.fx_composites`), or wrapped as it is (:mod:`.module`).
torch is imported only when a module is read or wrapped."""

from __future__ import annotations

from typing import Any

from ...model.chain import Model
from ...model.graph import GraphModel
from .chain import from_torch
from .module import TorchModule


class TorchFrontend:
    """Claims any callable (a torch.nn.Module, or a function of tensors)."""

    name = "torch"
    reader = "bc.from_torch"
    backends_hint = "backends=[bc.torch()]"

    def claims(self, obj: Any) -> bool:
        return callable(obj)

    def read(self, obj: Any, sample_shape: tuple[int, ...] | None, dtype: str) -> Model | GraphModel:
        return from_torch(obj, input_shape=sample_shape, input_dtype=dtype)

    def wrap(self, obj: Any) -> TorchModule:
        return TorchModule(obj)
