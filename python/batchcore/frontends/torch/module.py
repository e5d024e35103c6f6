"""A PyTorch module run as it is (an :class:`~batchcore.model.opaque.OpaqueModel`): any ``nn.Module`` or callable, inputs
of any shape whose first dimension is the batch (one array or tensor, or a tuple of them: images, token ids, several inputs),
outputs a tensor, a tuple or list, or a dict of them (nested too), each compared in its own format.

batchcore knows nothing of the module: the torch backends run it on slices of the user's data; no
dtype is converted (a floating input whose dtype is not the module's is refused, not cast). torch is
imported only when called.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ...errors import ArgumentError, DTypeError, NonFiniteError, ShapeError
from ...model.opaque import FLOAT_FORMATS, OpaqueModel, Output, Outputs, as_output, flatten_outputs, format_of
from .chain import import_torch


def _format_of(dtype: Any) -> str:
    return format_of(str(dtype).removeprefix("torch."))


class TorchModule(OpaqueModel):
    """A module (or any callable taking tensors) that batchcore runs as it is, through torch backends.

    ``module``: what is called; ``name``; ``dtype``: the format its floating parameters share ("fp32",
    "fp16", "bf16"), None for a callable without parameters. Modules with parameters of several floating
    dtypes are refused (their inputs' format would be ambiguous).
    """

    framework = "torch"

    def __init__(self, module: Any, name: str | None = None):
        torch = import_torch()
        if not callable(module):
            raise ArgumentError(f"a model must be a batchcore Model, a torch.nn.Module or a callable, got {module!r}")
        self.module = module
        self.name = name or type(module).__name__
        dtypes = set()
        if isinstance(module, torch.nn.Module):
            dtypes = {t.dtype for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()}
        if len(dtypes) > 1:
            raise DTypeError(f"{self.name} mixes floating dtypes {sorted(map(str, dtypes))}; batchcore compares a "
                             "module in one format: convert it with module.float(), .half() or .bfloat16()")
        self.dtype = _format_of(dtypes.pop()) if dtypes else None
        if self.dtype is not None and self.dtype not in FLOAT_FORMATS:
            raise DTypeError(f"{self.name} computes in {self.dtype}; batchcore compares float32, float16 and bfloat16")

    def describe(self) -> dict[str, Any]:
        torch = import_torch()
        params = sum(p.numel() for p in self.module.parameters()) if isinstance(self.module, torch.nn.Module) else 0
        return {"kind": "opaque module", "framework": "torch", "name": self.name, "class": type(self.module).__qualname__,
                "dtype": self.dtype, "parameters": int(params)}

    def digest(self) -> str:
        """A hash of the module's class and every parameter and buffer (name, dtype, shape, bits)."""
        torch = import_torch()
        tensors = self.module.state_dict().items() if isinstance(self.module, torch.nn.Module) else []
        return tensors_digest(tensors, type(self.module).__qualname__)

    def inputs(self, data: Any) -> tuple[Any, ...]:
        return as_inputs(data, self)

    def count(self, inputs: tuple[Any, ...]) -> int:
        return rows_of(inputs)

    def rows(self, inputs: tuple[Any, ...], start: int, stop: int) -> tuple[Any, ...]:
        return slice_rows(inputs, start, stop)

    def take(self, inputs: tuple[Any, ...], indices: np.ndarray) -> tuple[Any, ...]:
        return tuple(t[indices] for t in inputs)

    def inputs_digest(self, inputs: tuple[Any, ...]) -> str:
        return tensors_digest(enumerate(inputs))


def tensors_digest(named: Any, prefix: str = "") -> str:
    """A short hash of (name, tensor) pairs: each name, dtype, shape and every bit, in order."""
    torch = import_torch()
    h = hashlib.sha256(prefix.encode())
    for key, t in named:
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def as_inputs(data: Any, model: TorchModule) -> tuple[Any, ...]:
    """The user's data as a tuple of CPU tensors sharing their first dimension (rows >= 1): numpy arrays
    become tensors of the same dtype, tensors are taken as they are. DTypeError for a floating input whose
    format is not the module's, NonFiniteError for NaN or Inf in a floating input."""
    torch = import_torch()
    parts = list(data) if isinstance(data, (tuple, list)) else [data]
    if not parts:
        raise ShapeError("data is empty: pass an array or tensor (or a tuple of them) whose first dimension is the batch")
    out = []
    for i, part in enumerate(parts):
        where = "data" if len(parts) == 1 else f"data[{i}]"
        if isinstance(part, np.ndarray):
            if part.dtype == np.float64 or part.dtype.kind not in "fiub":
                raise DTypeError(f"{where} is {part.dtype}; pass the dtype the module computes in "
                                 f"({model.dtype or 'float32'}): batchcore does not convert inputs")
            t = torch.from_numpy(np.ascontiguousarray(part))
        elif isinstance(part, torch.Tensor):
            t = part.detach().cpu()
        else:
            raise DTypeError(f"{where} must be a numpy array or a torch tensor, got {type(part).__name__}")
        if t.dim() == 0 or t.shape[0] == 0:
            raise ShapeError(f"{where} has shape {tuple(t.shape)}: its first dimension is the batch and must hold rows")
        if t.is_floating_point():
            fmt = _format_of(t.dtype)
            if fmt != (model.dtype or fmt):
                raise DTypeError(f"{where} is {fmt} but {model.name} computes in {model.dtype}; batchcore does not "
                                 f"convert inputs: pass data of the module's dtype")
            if not bool(torch.isfinite(t).all()):
                raise NonFiniteError(f"{where} contains NaN or Inf")
        out.append(t)
    rows = {int(t.shape[0]) for t in out}
    if len(rows) > 1:
        raise ShapeError(f"the inputs' first dimensions differ ({sorted(rows)}): each is the batch")
    return tuple(out)


def rows_of(inputs: tuple[Any, ...]) -> int:
    return int(inputs[0].shape[0])


def slice_rows(inputs: tuple[Any, ...], start: int, stop: int) -> tuple[Any, ...]:
    return tuple(t[start:stop].contiguous() for t in inputs)


def outputs_of(result: Any, rows: int) -> Outputs:
    """The tensors a module returned (a tensor, a tuple or list, a dict, nested), each as an Output; every
    one must have the batch as its first dimension. DTypeError names anything else."""
    torch = import_torch()

    def leaf(obj: Any, name: str) -> Output | None:
        if not isinstance(obj, torch.Tensor):
            return None
        t = obj.detach().cpu()
        # bfloat16 as float32: exact (bfloat16 is float32 with 16 fewer mantissa bits)
        values = t.float().numpy() if t.dtype == torch.bfloat16 else t.contiguous().numpy()
        return as_output(name, values, str(t.dtype).removeprefix("torch."), rows)

    return flatten_outputs(result, rows, leaf, "torch")
