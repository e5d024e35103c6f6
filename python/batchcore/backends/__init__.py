"""Backends: who computes a model's forward pass, and how it is timed.

Each backend has ``run(model, x)`` (one forward pass of the rows of ``x``, float32 ``(B, outputs)``),
``run_batched(model, data, batch_size)`` (consecutive batches, as an evaluation loop runs them),
``measure(model, x, timer)`` (the timer policy of :mod:`batchcore.measure.timing` applied to one batch, with the
memory the pass held) and a readable ``label``. ``native`` is timed inside the core (a monotonic clock on
the CPU, CUDA events on the GPU); ``torch`` and ``cupy`` on a GPU with their own CUDA events around the
library call (input already on the device); ``torch`` and ``numpy`` on the CPU with the core's clock
around the Python call.
"""

from __future__ import annotations

from .arrays import CupyBackend, NumpyBackend, array_forward
from .base import Backend, Runs, TimedBatch, check_batch_size, check_input, cold_copies, cold_input_bytes, from_settings
from .cuda_events import event_sampler, stream_sm_clock
from .jax_backend import JaxBackend
from .keras_backend import KerasBackend
from .native_core import NativeBackend, cpu_model, gpu_model
from .onnx_backend import OnnxBackend
from .pytorch import TorchBackend, module_on

__all__ = ["Backend", "CupyBackend", "JaxBackend", "KerasBackend", "NativeBackend", "NumpyBackend", "OnnxBackend", "Runs",
           "TimedBatch", "TorchBackend", "array_forward", "check_batch_size", "check_input", "cold_copies", "cold_input_bytes",
           "cpu_model", "cupy", "event_sampler", "from_settings", "gpu_model", "jax", "keras", "module_on", "native",
           "numpy", "onnx", "stream_sm_clock", "torch"]


def native(order: str = "seq", precision: str = "fp32", policy: str | None = None, threads: int | None = None,
           device: str = "cpu", simd: str = "auto") -> NativeBackend:
    """batchcore's own core. ``order``: an accumulation order (see ``bc.orders.names()``);
    ``precision``: fp32, tf32, bf16 or fp16 inputs; ``policy``: None (the order at every batch size) or
    ``"library-like"`` (lanes:16 at B=1, seq for 2..127, splitk:4 from 128); ``threads``: None for all
    cores; ``device``: "cpu", "cuda", "cuda:N" or "auto" (the GPU when the core sees one; the bits are
    the same everywhere); ``simd``: auto, scalar, avx2 or avx512 (CPU only; all give the same bits)."""
    return NativeBackend(order, precision, policy, threads, device, simd)


def torch(device: str = "cpu", tf32: bool = False, threads: int | None = None,
          measure_memory: bool = True) -> TorchBackend:
    """PyTorch on ``device`` ("cpu", "cuda", "cuda:N" or "auto"); ``tf32`` allows TF32 matmuls on CUDA;
    ``threads``: torch's CPU thread count, set before every pass (default: all cores, as the native core).
    ``measure_memory`` (CPU): each measured point also runs one pass in a process of its own to read its
    peak RSS growth (:mod:`batchcore.backends.pytorch_memory`: a few tenths of a second per point, the first
    also starts the measuring server); on a GPU torch's own peak counter is used."""
    return TorchBackend(device, tf32, threads, measure_memory)


def numpy() -> NumpyBackend:
    """NumPy (its BLAS) on the CPU."""
    return NumpyBackend()


def cupy() -> CupyBackend:
    """CuPy (cuBLAS) on the GPU."""
    return CupyBackend()


def keras(mode: str = "predict") -> KerasBackend:
    """Keras 3 on the CPU, on the backend Keras is configured with (TensorFlow by default). ``mode``:
    "predict" runs ``model.predict(x, batch_size=B, verbose=0)`` over the data (Keras's own batching);
    "call" runs ``model(x_batch, training=False)`` per batch. Runs Keras models as they are, and models
    read by ``bc.from_keras`` (as the very Keras model read). Needs the ``keras`` extra
    (MissingDependencyError without it)."""
    return KerasBackend(mode)


def onnx(threads: int | None = None, optimization: str = "all", deterministic: bool = False,
         inter_op_threads: int | None = None, device: str = "cpu") -> OnnxBackend:
    """ONNX Runtime's CPU execution provider, one session per model, ``session.run`` per batch.
    ``threads``: intra-op threads (default: all cores); ``optimization``: the graph optimisation level,
    "disabled", "basic", "extended" or "all" (ONNX Runtime's default); ``deterministic``: its
    ``use_deterministic_compute``; ``inter_op_threads``: default 1 (the sequential execution mode uses
    none). Runs ONNX models (a ``.onnx`` path, an ``onnx.ModelProto``). Needs the ``onnx`` extra
    (MissingDependencyError without it)."""
    return OnnxBackend(device, threads, optimization, deterministic, inter_op_threads)


def jax(jit: bool = True, device: str = "cpu") -> JaxBackend:
    """JAX on XLA's CPU: ``jax.jit(fn)(params, x_batch)`` per batch (``jit=False``: op by op, as eager code
    runs). The first call at each batch size (its compilation) is timed apart (``first_call_ms``). Runs
    ``bc.jax_model(fn, params)``. Needs the ``jax`` extra (MissingDependencyError without it)."""
    return JaxBackend(device, jit)
