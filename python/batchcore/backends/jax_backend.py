"""JAX as a backend: a :func:`batchcore.jax_model` run as a JAX user runs it, ``jax.jit(fn)(params, x_batch)`` per
batch on XLA's CPU (or op by op with ``jit=False``).

XLA compiles once per input shape, so each new batch size pays a compilation: the first call at each batch
size is timed on its own and recorded (``first_call_ms``: tracing, compiling and one run), and the timer's
samples never include it. The inputs are placed on the device before the timed calls (the numpy-to-device
copy is not what is measured) and every call is waited for (``block_until_ready``: JAX dispatches
asynchronously). XLA's flags (``XLA_FLAGS``, read once when JAX starts) are recorded with each point; the
switches study sets them per process. Memory: XLA keeps no peak counter on the CPU, so the point says so.
"""

from __future__ import annotations

import importlib.metadata
import os
import weakref
from typing import Any

import numpy as np

from .. import checks, devices
from ..errors import ArgumentError, DeviceUnavailableError, ModuleError
from ..frontends.jax.module import JaxModel, import_jax, outputs_of
from ..measure.timing import Timer, as_timer
from ..model.array_inputs import ArrayInputs
from ..model.opaque import OpaqueModel, Outputs, concat_outputs
from .base import YES, Backend, FirstCalls, Runs, TimedBatch, check_batch_size

CPU_MEMORY = "not measured (XLA keeps no peak counter on the CPU)"


class JaxBackend(Backend):
    """JAX on XLA's CPU, jitted or op by op (see the module's docstring)."""

    name = "jax"
    order = "library"

    def __init__(self, device: str = "cpu", jit: bool = True):
        self._jax = import_jax()
        if devices.parse(device).kind != "cpu":
            raise DeviceUnavailableError(f"bc.jax() runs XLA's CPU; {device!r} is not supported yet (a GPU run has not "
                                         "checked it)")
        self.device = "cpu"
        self.jit = checks.flag(jit, "jit")
        self._cpu = self._jax.devices("cpu")[0]
        self._compiled: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._first_calls = FirstCalls()

    @property
    def label(self) -> str:
        return "jax[cpu]" if self.jit else "jax[cpu,eager]"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> JaxBackend:
        return cls(settings["device"], settings.get("jit", True))

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s.update(jax_version=self._jax.__version__, jaxlib_version=importlib.metadata.version("jaxlib"), jit=self.jit,
                 xla_flags=os.environ.get("XLA_FLAGS", ""), platform=self._cpu.platform,
                 default_matmul_precision=str(self._jax.config.jax_default_matmul_precision),
                 enable_x64=bool(self._jax.config.jax_enable_x64))
        return s

    def _function(self, model: JaxModel) -> Any:
        """The model's function as this backend calls it (jitted once per model, then cached)."""
        if model not in self._compiled:
            self._compiled[model] = self._jax.jit(model.fn) if self.jit else model.fn
        return self._compiled[model]

    def _call(self, model: JaxModel, inputs: ArrayInputs) -> Any:
        """One call on inputs already placed on the device, waited for (the first at their shapes timed apart)."""
        def call() -> Any:
            with self._jax.default_device(self._cpu):
                return self._jax.block_until_ready(model.call(self._function(model), inputs))

        try:
            return self._first_calls.call(model, inputs.shapes, call)
        except Exception as e:
            raise ModuleError(f"{model.name} raised {type(e).__name__} on {inputs.rows} rows under JAX: {e}") from e

    def _placed(self, inputs: ArrayInputs) -> ArrayInputs:
        """The inputs as arrays on the device (a copy made once, outside what is timed)."""
        return ArrayInputs(tuple(self._jax.device_put(a, self._cpu) for a in inputs.arrays), inputs.keys, inputs.single)

    def _module(self, model: Any) -> JaxModel:
        if not isinstance(model, JaxModel):
            raise ArgumentError(self.runs(model).reason or f"{model.name} is not a JAX model")
        return model

    def run_module(self, model: OpaqueModel, data: Any, batch_size: int) -> Outputs:
        """The outputs over all rows of ``data`` in consecutive batches of ``batch_size`` (the last one
        shorter), one call each, joined row-wise."""
        m = self._module(model)
        inputs, b = m.inputs(data), check_batch_size(batch_size)
        parts = [inputs.part(slice(i, i + b)) for i in range(0, inputs.rows, b)]
        return concat_outputs([outputs_of(self._call(m, self._placed(p)), p.rows) for p in parts])

    def measure_module(self, model: OpaqueModel, data: Any, timer: Timer | None = None, memory: bool = True) -> TimedBatch:
        """Time calls on all rows of ``data`` as one batch; the first call at this batch size (its compilation,
        in whichever phase it came) is recorded apart, never among the timer's samples."""
        m = self._module(model)
        placed = self._placed(m.inputs(data))
        self._call(m, placed)  # compiled (and its first call timed) here if no earlier phase did
        timed = TimedBatch(as_timer(timer).measure(lambda: self._call(m, placed)),
                           clock="steady_clock in the core around the call and block_until_ready")
        timed.first_call_ms = self._first_calls.ms(m, placed.shapes)
        timed.memory = CPU_MEMORY if memory else None
        return timed

    def runs(self, model: Any) -> Runs:
        """JAX models (``bc.jax_model(fn, params)``) only."""
        if isinstance(model, OpaqueModel):
            return YES if model.framework == "jax" else super().runs(model)
        return Runs(False, f"{self.label} runs JAX models (bc.jax_model(fn, params)); {getattr(model, 'name', model)!r} "
                           "is not one")

    def _forward(self, model: Any, x: np.ndarray) -> np.ndarray:
        raise ArgumentError(self.runs(model).reason)
