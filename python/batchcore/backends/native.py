"""batchcore's own core as a backend: every accumulation order named and fixed, timed and
memory-tracked inside the core, on the CPU or a GPU."""

from __future__ import annotations

import numpy as np

from .. import _core, checks, devices
from ..errors import ArgumentError, DeviceUnavailableError, OrderError, OutOfMemoryError
from ..models import Model
from ..orders import check_precision, parse
from ..timing import Measurement, as_timer
from .base import Backend, Measured, _check_batch_size, check_input, cold_input_bytes


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
        timer = as_timer(timer)
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
