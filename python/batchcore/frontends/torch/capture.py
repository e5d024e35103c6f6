"""``torch.export`` as batchcore uses it: a capture of the user's module (for its memory, or for reading it)
that says nothing on the user's console and, when it fails, says why in one line; and the one tensor a
module read as a graph stands for."""

from __future__ import annotations

import warnings
from typing import Any

from ...errors import ArgumentError, UnsupportedLayerError


def first_tensor(torch: Any, output: Any, name: str) -> Any:
    """The first tensor of what a module returns, in pytree order (a ``ModelOutput``'s first field: a model's
    logits): what a graph read from a module that returns more (a cache) computes."""
    if isinstance(output, torch.Tensor):
        return output
    from torch.utils import _pytree

    for leaf in _pytree.tree_leaves(output):
        if isinstance(leaf, torch.Tensor):
            return leaf
    raise UnsupportedLayerError(f"{name} returns no tensor ({type(output).__name__})")


def quiet_export(torch: Any, module: Any, inputs: tuple[Any, ...], name: str, dynamic_shapes: Any = None) -> Any:
    """``torch.export.export(module, inputs)`` without a word on the user's console: what export warns
    (attributes assigned during the capture, say) is about batchcore's capture, not the user's code; when it
    fails, ArgumentError gives the first line of its reason."""
    import logging

    loggers = [logging.getLogger(n) for n in ("torch._export", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(module, inputs, dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch raises many kinds here; the reason is what matters
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ArgumentError(f"torch.export could not capture {name} ({type(e).__name__}: {first})") from e
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
