"""Backends: who computes a model's forward pass, and how it is timed.

Each backend has ``run(model, x)`` (one forward pass of the rows of ``x``, float32 ``(B, outputs)``),
``run_batched(model, data, batch_size)`` (consecutive batches, as an evaluation loop runs them),
``time(model, x, repeats)`` and a readable ``label``. ``native`` runs batchcore's C++ core and is timed
inside it; ``torch`` and ``numpy`` are timed with a monotonic clock around the library call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import _core
from .errors import DeviceUnavailableError, DTypeError, MissingDependencyError, NonFiniteError, ShapeError
from .models import Model, _import_torch
from .orders import check_precision, parse


@dataclass
class Timing:
    """Wall times of repeated forward passes of one batch, in milliseconds, and memory in bytes."""

    times_ms: list[float]
    peak_bytes: int | None = None
    predicted_bytes: int | None = None
    clock: str = "steady_clock in the C++ core"


def check_input(model: Model, x) -> np.ndarray:
    """``x`` as a validated (B, model.input_width) float32 C-contiguous array with finite values."""
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"input must be a numpy float32 array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise DTypeError(f"input must be float32, got {x.dtype}")
    if x.ndim != 2:
        raise ShapeError(f"input must be 2-D (rows, {model.input_width}), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ShapeError("input is empty (0 rows)")
    if x.shape[1] != model.input_width:
        raise ShapeError(f"input has {x.shape[1]} columns, the model takes {model.input_width}")
    if not x.flags.c_contiguous:
        raise DTypeError("input must be C-contiguous (pass np.ascontiguousarray(x))")
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise NonFiniteError(f"input contains NaN or Inf at row {bad[0]}, column {bad[1]}")
    return x


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ShapeError(f"batch size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


class Backend:
    """Base class. Subclasses set ``name``, ``device``, ``precision``, ``order`` and implement ``_forward``."""

    name = "backend"
    device = "cpu"
    precision = "fp32"
    order = "library"

    @property
    def label(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<batchcore backend {self.label}>"

    def run(self, model: Model, x: np.ndarray) -> np.ndarray:
        return self._forward(model, check_input(model, x))

    def run_batched(self, model: Model, data: np.ndarray, batch_size: int) -> np.ndarray:
        data = check_input(model, data)
        b = _check_batch_size(batch_size)
        return np.concatenate([self._forward(model, data[i : i + b]) for i in range(0, len(data), b)])

    def time(self, model: Model, x: np.ndarray, repeats: int = 3, warmup: int = 1) -> Timing:
        x = check_input(model, x)
        for _ in range(warmup):
            self._forward(model, x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            self._forward(model, x)
            times.append((time.perf_counter_ns() - t0) / 1e6)
        return Timing(times, clock="perf_counter around the Python call")

    def settings(self) -> dict:
        """What identifies this backend's configuration in a result record."""
        return {"backend": self.label, "device": self.device, "precision": self.precision, "order": self.order}

    def _forward(self, model: Model, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class NativeBackend(Backend):
    """batchcore's C++ core: every accumulation order named and fixed, timed and memory-tracked inside."""

    name = "native"

    def __init__(self, order="seq", precision="fp32", policy=None, threads=None, device="cpu", simd="auto"):
        self.order = parse(order)
        self.precision = check_precision(precision)
        self.policy = "fixed" if policy is None else _core.parse_policy(policy)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ShapeError(f"threads must be a positive integer or None (all cores), got {threads!r}")
        self.threads = threads or _core.default_threads()
        if device not in ("cpu", "auto"):
            raise DeviceUnavailableError(f"the native backend runs on the CPU in this version, not {device!r}")
        self.device = "cpu"
        if simd != "auto" and simd not in _core.simd_levels():
            raise DeviceUnavailableError(f"SIMD level {simd!r} is not available here; available: {_core.simd_levels()}")
        self.simd = simd

    @property
    def label(self) -> str:
        what = "library-like" if self.policy == "library-like" else self.order
        extra = "" if self.precision == "fp32" else f",{self.precision}"
        return f"native[{what}{extra}]"

    def settings(self) -> dict:
        s = super().settings()
        s.update(policy=self.policy, threads=self.threads, simd=_core.simd_level() if self.simd == "auto" else self.simd)
        return s

    def _kw(self):
        return dict(order=self.order, precision=self.precision, policy=self.policy, threads=self.threads, simd=self.simd)

    def _forward(self, model, x):
        return model.native_model().run(x, **self._kw())[0]

    def run_batched(self, model, data, batch_size):
        data = check_input(model, data)
        return model.native_model().run_batched(data, _check_batch_size(batch_size), **self._kw())

    def time(self, model, x, repeats=3, warmup=1):
        x = check_input(model, x)
        _, times_ns, peak, predicted = model.native_model().run(x, warmup=warmup, repeats=repeats, **self._kw())
        return Timing([t / 1e6 for t in times_ns], peak, predicted)

    def plan_bytes(self, model: Model, batch_size: int) -> int:
        """Exact bytes a forward pass of ``batch_size`` rows holds at its peak (weights included)."""
        kw = self._kw()
        kw.pop("simd")
        return model.native_model().plan_bytes(_check_batch_size(batch_size), **kw)


class TorchBackend(Backend):
    """PyTorch, running the model's torch module in eval mode under ``torch.no_grad()``."""

    name = "torch"
    order = "library"

    def __init__(self, device="cpu", tf32=False):
        self._torch = _import_torch()
        if device == "auto":
            device = "cuda" if self._torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda"):
            raise DeviceUnavailableError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
        if device == "cuda" and not self._torch.cuda.is_available():
            raise DeviceUnavailableError("torch sees no CUDA device (torch.cuda.is_available() is False)")
        if tf32 and device != "cuda":
            raise DeviceUnavailableError("TF32 applies to CUDA matmuls only; use tf32=False on the CPU")
        self.device = device
        self.tf32 = bool(tf32)
        self.precision = "tf32" if tf32 else "fp32"

    @property
    def label(self) -> str:
        return f"torch[{self.device}{',tf32' if self.tf32 else ''}]"

    def settings(self) -> dict:
        s = super().settings()
        s.update(torch_version=self._torch.__version__, torch_threads=self._torch.get_num_threads())
        return s

    def _forward(self, model, x):
        torch = self._torch
        module = model.torch_module()
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                if self.device == "cuda":
                    torch.backends.cuda.matmul.allow_tf32 = self.tf32
                    out = module(torch.from_numpy(x).to("cuda")).cpu()
                else:
                    out = module(torch.from_numpy(x))
        finally:
            module.train(was_training)
        y = out.numpy()
        if y.dtype != np.float32:
            raise DTypeError(f"the torch module returned {y.dtype}, not float32")
        return np.ascontiguousarray(y)


class NumpyBackend(Backend):
    """NumPy: ``x @ W.T + b`` through numpy's BLAS, activations with numpy (GELU needs scipy)."""

    name = "numpy"
    order = "library"

    def _forward(self, model, x):
        return array_forward(np, model, x)


class CupyBackend(NumpyBackend):
    """CuPy on the GPU (``cupy.matmul``, cuBLAS). Needs cupy and a CUDA device."""

    name = "cupy"
    device = "cuda"

    def __init__(self):
        try:
            import cupy
        except ImportError as e:
            raise MissingDependencyError("cupy is not installed (pip install cupy-cuda13x)") from e
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # cupy raises its own runtime error class without a driver
            raise DeviceUnavailableError(f"cupy sees no CUDA device: {e}") from e
        if n == 0:
            raise DeviceUnavailableError("cupy sees no CUDA device")
        self._cp = cupy

    def _forward(self, model, x):
        return self._cp.asnumpy(array_forward(self._cp, model, self._cp.asarray(x)))


def _erf(xp):
    if xp is np:
        try:
            from scipy.special import erf
        except ImportError as e:
            raise MissingDependencyError("the numpy backend needs scipy for GELU (pip install scipy)") from e
        return erf
    from cupyx.scipy.special import erf  # pragma: no cover - GPU only

    return erf


def array_forward(xp, model: Model, x):
    """The model's forward pass written with array operations of ``xp`` (numpy or cupy), float32 throughout."""
    f32 = xp.float32
    for l in model.layers:
        p = l.params
        if l.kind == "linear":
            x = x @ xp.asarray(p["weight"]).T
            if p["bias"] is not None:
                x = x + xp.asarray(p["bias"])
        elif l.kind == "relu":
            x = xp.maximum(x, f32(0))
        elif l.kind == "gelu":
            x = f32(0.5) * x * (f32(1) + _erf(xp)(x * f32(1 / np.sqrt(2))).astype(f32))
        elif l.kind == "silu":
            x = x / (f32(1) + xp.exp(-x))
        elif l.kind == "tanh":
            x = xp.tanh(x)
        elif l.kind == "softmax":
            e = xp.exp(x - x.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        elif l.kind == "layer_norm":
            mean = x.mean(axis=1, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
            x = (x - mean) / xp.sqrt(var + f32(p["eps"])) * xp.asarray(p["weight"]) + xp.asarray(p["bias"])
        elif l.kind == "batch_norm":
            x = x * xp.asarray(p["scale"]) + xp.asarray(p["shift"])
    return xp.ascontiguousarray(x.astype(f32, copy=False))


# -- the public constructors (bc.native(...), bc.torch(...), bc.numpy(), bc.cupy()) --------------------


def native(order="seq", precision="fp32", policy=None, threads=None, device="cpu", simd="auto") -> NativeBackend:
    """batchcore's own core. ``order``: an accumulation order (see ``bc.orders.names()``);
    ``precision``: fp32, tf32, bf16 or fp16 inputs; ``policy``: None (the order at every batch size) or
    ``"library-like"`` (lanes:16 at B=1, seq for 2..127, splitk:4 from 128); ``threads``: None for all
    cores; ``simd``: auto, scalar, avx2 or avx512 (all give the same bits)."""
    return NativeBackend(order, precision, policy, threads, device, simd)


def torch(device="cpu", tf32=False) -> TorchBackend:
    """PyTorch on ``device`` ("cpu", "cuda" or "auto"); ``tf32`` allows TF32 matmuls on CUDA."""
    return TorchBackend(device, tf32)


def numpy() -> NumpyBackend:
    """NumPy (its BLAS) on the CPU."""
    return NumpyBackend()


def cupy() -> CupyBackend:
    """CuPy (cuBLAS) on the GPU."""
    return CupyBackend()
