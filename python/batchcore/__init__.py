"""batchcore: what does the batch size change? Bits, speed and memory of inference, measured.

    import batchcore as bc
    model = bc.mlp([784, 128, 10], activation="relu", head="softmax", seed=0)
    res = bc.sweep(model, batch_sizes=[1, 2, 3, 8, 64, 256, 1024],
                   backends=[bc.torch(), bc.numpy(), bc.native(order="seq"), bc.native(order="splitk:4")])
    print(res.table()); print(res.classes())
"""

from . import decisions, devices, numerics, orders, studies
from .backends import cupy, native, numpy, torch
from .decisions import compare
from .errors import (
    ArgumentError,
    BatchcoreError,
    DeviceUnavailableError,
    DTypeError,
    MissingDependencyError,
    ModuleError,
    NonFiniteError,
    OrderError,
    OutOfMemoryError,
    ResultFileError,
    ShapeError,
    UnsupportedLayerError,
)
from .info import _version, info
from .memory import LargestBatch, largest_batch
from .models import Layer, Model, mlp
from .probes import Probe, probe
from .results import SweepResult
from .sweep import sweep
from .timing import Measurement, Timer
from .torch_models import from_torch

__version__ = _version()  # not info(): that imports torch, too slow for import time

__all__ = [
    "ArgumentError", "BatchcoreError", "DeviceUnavailableError", "DTypeError", "MissingDependencyError", "NonFiniteError",
    "ModuleError", "OrderError", "OutOfMemoryError", "ResultFileError", "ShapeError", "UnsupportedLayerError",
    "compare", "decisions", "devices", "studies", "LargestBatch", "Layer", "Measurement", "largest_batch", "Model", "SweepResult",
    "Timer", "cupy", "from_torch", "info", "mlp", "native", "numerics", "numpy", "orders", "Probe", "probe", "sweep",
    "torch",
]
