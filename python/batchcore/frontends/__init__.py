"""Frontends: how a framework's model reaches batchcore. A frontend says which objects it claims, and
for one of them either **reads** it into batchcore's own representation (a chain :class:`~batchcore.model.chain.Model`
or a :class:`~batchcore.model.graph.GraphModel`, which every backend of its kind runs with named orders)
or **wraps** it as it is (an :class:`~batchcore.model.opaque.OpaqueModel`, which only that framework's
backends run). Backends say which models they run (``Backend.runs``); nothing else dispatches on a
framework. PyTorch's frontend is :mod:`batchcore.frontends.torch`, Keras's :mod:`batchcore.frontends.keras`,
ONNX's :mod:`batchcore.frontends.onnx`.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import ArgumentError
from ..model.chain import Model
from ..model.graph import GraphModel
from ..model.opaque import OpaqueModel
from .keras import KerasFrontend
from .onnx import OnnxFrontend
from .torch import TorchFrontend


class Frontend(Protocol):
    name: str
    reader: str  # how a user calls the reader, for messages: "bc.from_torch"
    backends_hint: str  # the backends that run its modules as they are, for messages: "backends=[bc.torch()]"

    def claims(self, obj: Any) -> bool: ...

    def read(self, obj: Any, sample_shape: tuple[int, ...] | None, dtype: str) -> Model | GraphModel: ...

    def wrap(self, obj: Any) -> OpaqueModel: ...


# asked in order; the first that claims an object takes it (torch's last: it claims any callable)
FRONTENDS: list[Frontend] = [KerasFrontend(), OnnxFrontend(), TorchFrontend()]


def frontend_of(obj: Any) -> Frontend:
    """The frontend that claims ``obj`` (ArgumentError naming what batchcore takes when none does)."""
    for frontend in FRONTENDS:
        if frontend.claims(obj):
            return frontend
    raise ArgumentError("a model must be a batchcore Model (bc.mlp(...), bc.from_torch(module)), a torch.nn.Module, "
                        f"a Keras model, an ONNX model (a .onnx path or an onnx.ModelProto) or a callable, got {obj!r}")
