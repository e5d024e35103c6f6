"""Reading a module that ``torch.fx`` cannot trace (a Hugging Face model: its forward inspects its own
arguments, builds masks and position ids, returns a ``ModelOutput``) through ``torch.export``.

The module is captured with its batch dimension dynamic, for its first tensor output (a model's logits;
what else it returns, a cache, is left out), and the capture's aten operations are read by
:class:`~batchcore.frontends.torch.export_ops.AtenReader` in the same pass over the nodes as a traced module's
(:func:`batchcore.frontends.torch.fx_trace.read_graph`): values made from the input's shape alone (position
ids, an all-true or causal mask) become constants, every other value must keep the batch first, and what
cannot be read is refused naming the operation and the line of the user's (or the library's) code.
"""

from __future__ import annotations

from typing import Any

from ...errors import ArgumentError, UnsupportedLayerError
from .capture import first_tensor, quiet_export
from .export_ops import AtenReader


def _first_tensor_output(torch: Any, module: Any) -> Any:
    """A module returning ``module``'s first tensor output (in pytree order: a ``ModelOutput``'s first field)."""
    class FirstTensor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: Any) -> Any:
            return first_tensor(torch, self.inner(x), type(module).__name__)

    return FirstTensor()


def exported_graph(torch: Any, module: Any, input_shape: tuple[int, ...], name: str, input_dtype: str,
                   fx_reason: str) -> tuple[Any, type[AtenReader]]:
    """``module``'s ``torch.export`` capture (batch dimension dynamic) as a graph module of aten operations,
    and the reader of those; UnsupportedLayerError saying why neither torch.fx (``fx_reason``) nor export
    could capture it."""
    dtype = getattr(torch, input_dtype)
    sample = torch.zeros((2, *input_shape), dtype=dtype) if dtype == torch.int64 else torch.randn((2, *input_shape))
    was_training = module.training
    module.eval()
    try:
        batch = torch.export.Dim("batch")
        exported = quiet_export(torch, _first_tensor_output(torch, module), (sample,), name,
                                dynamic_shapes=({0: batch},))
    except ArgumentError as e:
        raise UnsupportedLayerError(f"{fx_reason}, and {e}") from None
    finally:
        module.train(was_training)
    return exported.module(), AtenReader
