"""Backends: who computes a model's forward pass, and how it is timed.

Each backend has ``run(model, x)`` (one forward pass of the rows of ``x``, float32 ``(B, outputs)``),
``run_batched(model, data, batch_size)`` (consecutive batches, as an evaluation loop runs them),
``measure(model, x, timer)`` (the timer policy of :mod:`batchcore.timing` applied to one batch, with the
memory the pass held) and a readable ``label``. ``native`` is timed inside the core (a monotonic clock on
the CPU, CUDA events on the GPU); ``torch`` and ``cupy`` on a GPU with their own CUDA events around the
library call (input already on the device); ``torch`` and ``numpy`` on the CPU with the core's clock
around the Python call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from . import _core, checks, devices, rss
from .errors import (ArgumentError, DeviceUnavailableError, DTypeError, MissingDependencyError, NonFiniteError,
                     OrderError, OutOfMemoryError, ShapeError)
from .models import Model, _import_torch
from .orders import check_precision, parse
from .timing import Measurement, Timer


@dataclass
class Measured:
    """A timed batch: the timer's statistics, the memory the forward pass held at its peak (bytes, or
    None where it cannot be measured honestly), the planner's prediction (native only) and how both the
    time and the memory were measured."""

    timing: Measurement
    peak_bytes: int | None = None
    predicted_bytes: int | None = None
    clock: str = "steady_clock in the C++ core"
    memory: str | None = None


def cold_input_bytes() -> int:
    """Bytes of input copies a cold CPU measurement rotates through: twice the last-level cache."""
    from .probes import last_level_cache_bytes

    llc = last_level_cache_bytes()
    if not llc:
        raise ArgumentError("cold timing on the CPU needs the last-level cache's size, which this system "
                            "does not report (/sys/devices/system/cpu/cpu*/cache)")
    return 2 * llc


def cold_copies(input_bytes: int) -> int:
    """Copies of an input of ``input_bytes`` that hold :func:`cold_input_bytes` (at least 2); the core's
    Model.cold_copies counts the same way."""
    return max(2, -(-cold_input_bytes() // input_bytes))


def check_input(model: Model, x) -> np.ndarray:
    """``x`` as a validated (B, model.input_width) float32 C-contiguous array with finite values."""
    if not isinstance(model, Model):
        raise ArgumentError(f"model must be a batchcore Model (bc.mlp(...) or bc.from_torch(module)), got {model!r}")
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
    return checks.positive_int(batch_size, "batch size", ShapeError, maximum=2**62)


def _check_timer(timer) -> Timer:
    if timer is None:
        return Timer()
    if not isinstance(timer, Timer):
        raise ArgumentError(f"timer must be a batchcore.Timer, got {type(timer).__name__}")
    return timer


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

    def measure(self, model: Model, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> Measured:
        """Time forward passes of the batch ``x`` under ``timer`` (default ``Timer()``). ``cold``: no
        pass finds its input in a cache (CPU: each pass reads the next of copies of ``x`` that together
        hold twice the last-level cache; GPU: the L2 is flushed before every pass). ``memory=False``
        skips a memory measurement that costs time of its own (torch on the CPU: a fresh process)."""
        x = check_input(model, x)
        timer = _check_timer(timer)
        checks.flag(cold, "cold")
        if not cold:
            return Measured(timer.measure(lambda: self._forward(model, x)),
                            clock="steady_clock in the core around the Python call")
        copies = itertools.cycle([x.copy() for _ in range(cold_copies(x.nbytes))])
        return Measured(timer.measure(lambda: self._forward(model, next(copies))),
                        clock="steady_clock in the core around the Python call; inputs rotated (cold)")

    def fits(self, model: Model, batch_size: int, budget_bytes: int | None = None) -> int | None:
        """Whether one forward pass of ``batch_size`` rows fits: its peak bytes, or None after an
        out-of-memory error (everything freed). Backends that cannot bound their memory refuse."""
        raise ArgumentError(f"{self.label} cannot bound or catch its memory use; largest_batch() supports "
                            "bc.native() (CPU with a budget, or GPU), and torch and cupy on a GPU")

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
        if policy is not None and not isinstance(policy, str):
            raise OrderError(f"policy must be None or 'library-like', got {policy!r}")
        self.policy = "fixed" if policy is None else _core.parse_policy(policy)
        self.threads = checks.threads(threads) or _core.default_threads()
        self._device = devices.parse(device)
        self.device = str(self._device)
        if not isinstance(simd, str) or (simd != "auto" and simd not in _core.simd_levels()):
            raise DeviceUnavailableError(f"SIMD level {simd!r} is not available here; available: {_core.simd_levels()}")
        self.simd = simd

    @property
    def on_gpu(self) -> bool:
        return self._device.kind == "cuda"

    @property
    def label(self) -> str:
        what = "library-like" if self.policy == "library-like" else self.order
        extra = "" if self.precision == "fp32" else f",{self.precision}"
        where = f"{self.device}:" if self.on_gpu else ""
        return f"native[{where}{what}{extra}]"

    def settings(self) -> dict:
        s = super().settings()
        s.update(policy=self.policy)
        if not self.on_gpu:
            s.update(threads=self.threads, simd=_core.simd_level() if self.simd == "auto" else self.simd)
        return s

    def _kw(self):
        kw = dict(order=self.order, precision=self.precision, policy=self.policy)
        if not self.on_gpu:
            kw.update(threads=self.threads, simd=self.simd)
        return kw

    def _core_model(self, model: Model):
        return model.cuda_model(self._device.index) if self.on_gpu else model.native_model()

    def _forward(self, model, x):
        return self._core_model(model).run(x, **self._kw())[0]

    def run_batched(self, model, data, batch_size):
        if self.on_gpu:  # one device call per batch, each a whole forward pass
            return super().run_batched(model, data, batch_size)
        data = check_input(model, data)
        b = min(_check_batch_size(batch_size), len(data))  # one batch of everything past len(data)
        return model.native_model().run_batched(data, b, **self._kw())

    def measure(self, model, x, timer=None, cold=False, memory=True):
        x = check_input(model, x)
        timer = _check_timer(timer)
        checks.flag(cold, "cold")
        extra = dict(cold=cold) if self.on_gpu else dict(cold_bytes=cold_input_bytes() if cold else 0)
        _, summary, peak, predicted = self._core_model(model).measure(x, timer.policy(), **self._kw(), **extra)
        clock = ("CUDA events on the core's stream; samples under 75 % of the default SM clock discarded"
                 if self.on_gpu else "steady_clock in the C++ core")
        return Measured(Measurement.from_summary(summary, timer), peak, predicted, clock, "tracked allocator (exact)")

    def plan_bytes(self, model: Model, batch_size: int) -> int:
        """Exact bytes a forward pass of ``batch_size`` rows holds at its peak (weights included)."""
        kw = self._kw()
        kw.pop("simd", None)
        return self._core_model(model).plan_bytes(_check_batch_size(batch_size), **kw)

    def fits(self, model, batch_size, budget_bytes=None):
        if budget_bytes is None and not self.on_gpu:
            raise ArgumentError("native on the CPU: largest_batch() needs budget_bytes (the search does not "
                                "exhaust the machine's memory)")
        core = self._core_model(model)
        B = _check_batch_size(batch_size)
        core.memory_limit = -1 if budget_bytes is None else int(budget_bytes)
        try:
            if self.on_gpu:
                return core.run_zeros(B, **self._kw())
            # The zero input is only made once the plan fits the budget: at B = 2**40 the plan says no
            # before numpy is asked for terabytes.
            if budget_bytes is not None and self.plan_bytes(model, B) > budget_bytes:
                return None
            checks.require_allocatable(4 * B * model.input_width, f"a probe batch of {B} rows")
            return core.run(np.zeros((B, model.input_width), np.float32), **self._kw())[1]
        except OutOfMemoryError:
            return None
        finally:
            core.memory_limit = -1


class TorchBackend(Backend):
    """PyTorch, running the model's torch module in eval mode under ``torch.no_grad()``."""

    name = "torch"
    order = "library"

    def __init__(self, device="cpu", tf32=False, threads=None, measure_memory=True):
        checks.flag(tf32, "tf32")
        torch = self._torch = _import_torch()
        dev = devices.spell(device, torch.cuda.device_count() if torch.cuda.is_available() else 0)
        if dev.kind == "cuda":
            if not torch.cuda.is_available():
                raise DeviceUnavailableError("torch sees no CUDA device (torch.cuda.is_available() is False)")
            if dev.index >= torch.cuda.device_count():
                raise DeviceUnavailableError(f"{dev} is not available: torch sees {torch.cuda.device_count()} GPU(s)")
        elif tf32:
            raise DeviceUnavailableError("TF32 applies to CUDA matmuls only; use tf32=False on the CPU")
        threads = checks.threads(threads)
        if dev.kind == "cuda" and threads is not None:
            raise ArgumentError("threads applies to torch on the CPU")
        self.device = str(dev)
        # Set explicitly before every CPU pass: torch's own default (physical cores, or 1 inside
        # torch.utils.benchmark) differs from the core's; both are recorded.
        self.threads = None if dev.kind == "cuda" else (threads or _core.default_threads())
        self.tf32 = bool(tf32)
        self.precision = "tf32" if tf32 else "fp32"
        self.measure_memory = checks.flag(measure_memory, "measure_memory")

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def label(self) -> str:
        return f"torch[{self.device}{',tf32' if self.tf32 else ''}]"

    def settings(self) -> dict:
        s = super().settings()
        torch = self._torch
        s.update(torch_version=torch.__version__, threads=self.threads)
        if self.on_gpu:
            s.update(allow_tf32=self.tf32, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                     reduced_precision_reduction=torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
                     torch_cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(self.device))
        return s

    def _device_forward(self, module, xd):
        """One forward pass of a tensor already on the device; the result stays there."""
        torch = self._torch
        if self.on_gpu:
            torch.backends.cuda.matmul.allow_tf32 = self.tf32  # a process-wide flag: set before every pass
        elif torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # process-wide too
        with torch.no_grad():
            return module(xd)

    def _forward(self, model, x):
        module = model.torch_module(self.device)
        was_training = module.training
        module.eval()
        try:
            out = self._device_forward(module, self._torch.from_numpy(x).to(self.device))
        finally:
            module.train(was_training)
        y = out.cpu().numpy()
        if y.dtype != np.float32:
            raise DTypeError(f"the torch module returned {y.dtype}, not float32")
        return np.ascontiguousarray(y)

    def measure(self, model, x, timer=None, cold=False, memory=True):
        if not self.on_gpu:
            timed = super().measure(model, x, timer, cold)
            if not memory:
                timed.memory = None
            elif not self.measure_memory:
                timed.memory = "not measured (measure_memory=False)"
            elif not rss.supported():
                timed.memory = "not measured (needs Linux's /proc/self/clear_refs)"
            else:
                timed.peak_bytes, timed.memory = rss.rss_growth_bytes(model, len(x), self.threads), rss.METHOD
            return timed
        torch, x = self._torch, check_input(model, x)
        timer = _check_timer(timer)
        module = model.torch_module(self.device).eval()
        xd = torch.from_numpy(x).to(self.device)
        flush = _l2_flush_tensor(torch, self.device) if cold else None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def call():
            self._device_forward(module, xd)
            torch.cuda.synchronize(self.device)

        sm_clock = _sm_clock_for(torch.device(self.device).index or 0, torch.cuda.current_stream(self.device).cuda_stream)
        sample = event_sampler(lambda: self._device_forward(module, xd), start, end, start.elapsed_time,
                               None if flush is None else lambda: flush.add_(1), sm_clock)
        measurement = timer.measure(call, sample=sample)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self._device_forward(module, xd)
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device)
        return Measured(measurement, peak, None, "torch.cuda.Event around the module call" + _clock_note(sm_clock),
                        "torch.cuda.max_memory_allocated (weights, input and caching-allocator blocks in use)")


    def fits(self, model, batch_size, budget_bytes=None):
        if not self.on_gpu:
            return super().fits(model, batch_size, budget_bytes)
        torch, B = self._torch, _check_batch_size(batch_size)
        module = model.torch_module(self.device).eval()
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            self._device_forward(module, torch.zeros((B, model.input_width), device=self.device))
            torch.cuda.synchronize(self.device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return None
        peak = torch.cuda.max_memory_allocated(self.device)
        torch.cuda.empty_cache()
        return None if budget_bytes is not None and peak > budget_bytes else peak


def event_sampler(run, start, end, elapsed_ms, evict=None, sm_clock=None):
    """A Timer sampler from a pair of CUDA events (torch's or CuPy's: ``record()``, ``synchronize()``;
    ``elapsed_ms(end)`` gives the ms since ``start``). Hot (``evict`` None): one event pair around a block
    of back-to-back ``run()`` calls. Cold: ``evict()`` (a write of twice the L2) before every call, each
    call timed by its own pair so the eviction is never part of a sample. ``sm_clock`` (``mark_start()``,
    ``mark_stop()``, ``throttled()``, e.g. :func:`stream_sm_clock`) brackets each sample; a sample it
    finds throttled is returned as rejected. Returns ``(ns of the block, rejected)``."""

    def sample(calls):
        total_ms = 0.0
        if sm_clock is not None:
            sm_clock.mark_start()
        for _ in range(1 if evict is None else calls):
            if evict is not None:
                evict()
            start.record()
            for _ in range(calls if evict is None else 1):
                run()
            end.record()
            end.synchronize()
            total_ms += elapsed_ms(end)
        if sm_clock is None:
            return total_ms * 1e6, False
        sm_clock.mark_stop()
        return total_ms * 1e6, bool(sm_clock.throttled())

    return sample


class stream_sm_clock:
    """The core's SM-clock check (``_cuda.SmClock``: SM 0's cycles over global nanoseconds, read by a tiny
    kernel at each end of a sample) on another library's stream, given as its integer handle."""

    def __init__(self, index: int, stream_handle: int):
        from .info import cuda_module

        self._clock = cuda_module().SmClock(index)
        self._stream = int(stream_handle)

    def mark_start(self):
        self._clock.mark_start(self._stream)

    def mark_stop(self):
        self._clock.mark_stop(self._stream)

    def throttled(self) -> bool:
        return self._clock.throttled(self._stream)


def _sm_clock_for(index: int, stream_handle: int):
    """A throttle check on the stream when batchcore's CUDA core is built, else None (then the record's
    clock field says that samples were not checked)."""
    from .info import cuda_module

    return stream_sm_clock(index, stream_handle) if cuda_module() is not None else None


def _clock_note(sm_clock) -> str:
    return ("; samples under 75 % of the default SM clock discarded" if sm_clock is not None
            else "; SM clock not checked (batchcore built without CUDA)")


def _l2_flush_tensor(torch, device):
    """A tensor twice the GPU's L2: writing it before a pass evicts the pass's data from the L2."""
    l2 = torch.cuda.get_device_properties(device).L2_cache_size
    return torch.zeros(max(2 * l2 // 4, 1), dtype=torch.float32, device=device)


class NumpyBackend(Backend):
    """NumPy: ``x @ W.T + b`` through numpy's BLAS, activations with numpy (GELU: scipy's erf)."""

    name = "numpy"
    order = "library"

    def _forward(self, model, x):
        return array_forward(np, model, x)


class CupyBackend(NumpyBackend):
    """CuPy on the GPU (``cupy.matmul``, cuBLAS). Needs cupy and a CUDA device. Parameters are copied to
    the device once per model."""

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
        self._params: dict = {}  # id(model) -> (model, device copies of its parameters)

    def settings(self) -> dict:
        s = super().settings()
        s.update(cupy_version=self._cp.__version__, cuda_runtime=self._cp.cuda.runtime.runtimeGetVersion())
        return s

    def _device_params(self, model):
        entry = self._params.get(id(model))
        if entry is None or entry[0] is not model:
            cp = self._cp
            entry = (model, [{k: cp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in l.params.items()}
                             for l in model.layers])
            self._params[id(model)] = entry
        return entry[1]

    def _forward(self, model, x):
        return self._cp.asnumpy(array_forward(self._cp, model, self._cp.asarray(x), self._device_params(model)))

    def measure(self, model, x, timer=None, cold=False, memory=True):
        cp, x = self._cp, check_input(model, x)
        timer = _check_timer(timer)
        params, xd = self._device_params(model), cp.asarray(x)
        flush = cp.zeros(max(2 * cp.cuda.Device().attributes["L2CacheSize"] // 4, 1), cp.float32) if cold else None
        start, end = cp.cuda.Event(), cp.cuda.Event()

        def call():
            array_forward(cp, model, xd, params)
            cp.cuda.get_current_stream().synchronize()

        sm_clock = _sm_clock_for(cp.cuda.Device().id, cp.cuda.get_current_stream().ptr)
        sample = event_sampler(lambda: array_forward(cp, model, xd, params), start, end,
                               lambda e: cp.cuda.get_elapsed_time(start, e),
                               None if flush is None else lambda: cp.add(flush, 1, out=flush), sm_clock)
        measurement = timer.measure(call, sample=sample)
        pool = cp.get_default_memory_pool()
        pool.free_all_blocks()
        array_forward(cp, model, xd, params)
        cp.cuda.get_current_stream().synchronize()
        return Measured(measurement, pool.total_bytes(), None, "cupy.cuda.Event around the array calls" + _clock_note(sm_clock),
                        "cupy default memory pool total after one pass (input, parameters and intermediates)")

    def fits(self, model, batch_size, budget_bytes=None):
        cp, B = self._cp, _check_batch_size(batch_size)
        params, pool = self._device_params(model), cp.get_default_memory_pool()
        pool.free_all_blocks()
        try:
            array_forward(cp, model, cp.zeros((B, model.input_width), cp.float32), params)
            cp.cuda.get_current_stream().synchronize()
        except cp.cuda.memory.OutOfMemoryError:
            pool.free_all_blocks()
            return None
        peak = pool.total_bytes()
        pool.free_all_blocks()
        return None if budget_bytes is not None and peak > budget_bytes else peak


def _erf(xp):
    if xp is np:
        from scipy.special import erf  # a declared dependency

        return erf
    from cupyx.scipy.special import erf  # pragma: no cover - GPU only

    return erf


def array_forward(xp, model: Model, x, params=None):
    """The model's forward pass written with array operations of ``xp`` (numpy or cupy), float32
    throughout; ``params``: per layer, the parameters as ``xp`` arrays (default: the model's own)."""
    f32 = xp.float32
    for i, l in enumerate(model.layers):
        p = l.params if params is None else params[i]
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
    cores; ``device``: "cpu", "cuda", "cuda:N" or "auto" (the GPU when the core sees one; the bits are
    the same everywhere); ``simd``: auto, scalar, avx2 or avx512 (CPU only; all give the same bits)."""
    return NativeBackend(order, precision, policy, threads, device, simd)


def torch(device="cpu", tf32=False, threads=None, measure_memory=True) -> TorchBackend:
    """PyTorch on ``device`` ("cpu", "cuda", "cuda:N" or "auto"); ``tf32`` allows TF32 matmuls on CUDA;
    ``threads``: torch's CPU thread count, set before every pass (default: all cores, as the native core).
    ``measure_memory`` (CPU): each measured point also runs one pass in a fresh process to read its peak
    RSS growth (:mod:`batchcore.rss`, about a second per point); on a GPU torch's own peak counter is used."""
    return TorchBackend(device, tf32, threads, measure_memory)


def numpy() -> NumpyBackend:
    """NumPy (its BLAS) on the CPU."""
    return NumpyBackend()


def cupy() -> CupyBackend:
    """CuPy (cuBLAS) on the GPU."""
    return CupyBackend()
