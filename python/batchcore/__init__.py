"""batchcore: what does the batch size change? Bits, speed and memory of inference, measured.

    import batchcore as bc
    model = bc.mlp([784, 128, 10], activation="relu", head="softmax", seed=0)
    res = bc.sweep(model, batch_sizes=[1, 2, 3, 8, 64, 256, 1024],
                   backends=[bc.torch(), bc.numpy(), bc.native(order="seq"), bc.native(order="splitk:4")])
    print(res.table()); print(res.classes())
"""

from . import devices, studies
from .backends import cupy, jax, keras, native, numpy, onnx, torch  # noqa: F401  (bc.torch() etc.; not in __all__, see below)
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
from .explain import reveal, reveal_sweep, trace
from .frontends.jax import jax_model
from .frontends.keras import from_keras
from .frontends.onnx import export_onnx, from_onnx
from .frontends.torch.chain import from_torch
from .info import _version, info
from .measure import orders
from .measure.capacity import LargestBatch, largest_batch
from .measure.probes import Probe, probe
from .measure.timing import Measurement, Timer
from .measure.tuning import tune  # noqa: F401  (bc.tune(): the machine's set-up, an attribute like bc.torch())
from .model.chain import Layer, Model, mlp
from .model.graph import GraphModel
from .results import decisions, numerics
from .results.audit import Audit
from .results.decisions import compare
from .results.sweep_result import SweepResult
from .run.audit import audit
from .run.ray_cluster import ray_executor  # noqa: F401  (bc.ray_executor(): a library's factory, as bc.torch())
from .run.sweep import sweep

__version__ = _version()  # not info(): that imports torch, too slow for import time

# What ``from batchcore import *`` binds: the functions, classes and exceptions, never the factories named
# after libraries (``bc.torch()``, ``bc.numpy()``, ``bc.cupy()``, ``bc.keras()``, ``bc.onnx()``, ``bc.jax()``,
# ``bc.ray_executor()``), which would shadow the user's own ``torch``, ``numpy``, ``keras``, ``onnx`` and ``jax``.
__all__ = [
    "ArgumentError", "Audit", "BatchcoreError", "DeviceUnavailableError", "DTypeError", "MissingDependencyError", "ModuleError",
    "NonFiniteError", "OrderError", "OutOfMemoryError", "ResultFileError", "ShapeError", "UnsupportedLayerError",
    "GraphModel", "LargestBatch", "Layer", "Measurement", "Model", "Probe", "SweepResult", "Timer",
    "audit", "compare", "decisions", "devices", "export_onnx", "from_keras", "from_onnx", "from_torch", "info", "jax_model",
    "largest_batch", "mlp", "native", "numerics", "orders", "probe", "reveal", "reveal_sweep", "studies", "sweep", "trace",
]
