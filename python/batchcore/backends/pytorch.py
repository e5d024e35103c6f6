"""PyTorch as a backend: the model's torch module on the CPU (timed around the call, memory from a
process of its own) or a GPU (CUDA events, torch's own memory counters)."""

from __future__ import annotations

import copy
import weakref
from typing import Any

import numpy as np

from .. import _core, checks, devices
from ..errors import ArgumentError, BatchcoreError, DeviceUnavailableError, DTypeError, ModuleError, OutOfMemoryError
from ..frontends.torch.capture import first_tensor
from ..frontends.torch.chain import import_torch, module_of
from ..frontends.torch.module import TorchModule, as_inputs, outputs_of, rows_of, slice_rows
from ..measure.timing import Timer, as_timer
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from ..model.opaque import OpaqueModel, Outputs, concat_outputs
from . import pytorch_memory as rss
from .base import YES, Backend, Runs, TimedBatch, check_batch_size, check_input
from .cuda_events import _clock_note, _l2_flush_tensor, _sm_clock_for, event_sampler

# The module each model runs as, per device ("cpu": the model's own source module, or one built from its
# parameters; a GPU: a copy moved there once); an entry goes when its model does.
_MODULES: weakref.WeakKeyDictionary[Model | GraphModel | TorchModule, dict[str, Any]] = weakref.WeakKeyDictionary()


def module_on(model: AnyModel, device: str) -> Any:
    """The torch module ``model`` runs as on ``device`` (built or moved once, then cached)."""
    per_device = _MODULES.setdefault(model, {})
    if "cpu" not in per_device:
        per_device["cpu"] = module_of(model)
    if device not in per_device:
        per_device[device] = copy.deepcopy(per_device["cpu"]).to(device).eval()
    return per_device[device]


class TorchBackend(Backend):
    """PyTorch, running the model's torch module in eval mode under ``torch.no_grad()``."""

    name = "torch"
    order = "library"

    def __init__(self, device: str = "cpu", tf32: bool = False, threads: int | None = None,
                 measure_memory: bool = True):
        checks.flag(tf32, "tf32")
        torch = self._torch = import_torch()
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

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> TorchBackend:
        s = settings
        return cls(s["device"], s.get("allow_tf32", False), s.get("threads"), s.get("measure_memory", True))

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        torch = self._torch
        s.update(torch_version=torch.__version__, threads=self.threads, measure_memory=self.measure_memory)
        if self.on_gpu:
            s.update(allow_tf32=self.tf32, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                     reduced_precision_reduction=torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
                     torch_cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(self.device))
        return s

    def module(self, model: AnyModel) -> Any:
        """The torch module this backend runs for ``model`` (on its device, cached)."""
        return module_on(model, self.device)

    def _device_forward(self, module: Any, xd: Any) -> Any:
        """One forward pass of a tensor already on the device; the result stays there."""
        torch = self._torch
        if self.on_gpu:
            torch.backends.cuda.matmul.allow_tf32 = self.tf32  # a process-wide flag: set before every pass
        elif torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # process-wide too
        with torch.no_grad():
            return module(xd)

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        module = self.module(model)
        was_training = module.training
        module.eval()
        try:
            out = self._device_forward(module, self._torch.from_numpy(x).to(self.device))
        finally:
            module.train(was_training)
        y = first_tensor(self._torch, out, getattr(model, "name", "the module")).cpu().numpy()
        if y.dtype != np.float32:
            raise DTypeError(f"the torch module returned {y.dtype}, not float32")
        return np.ascontiguousarray(y)

    # -- a module run as it is (opaque) ------------------------------------------------------------------

    def _module_forward(self, model: TorchModule, inputs: tuple[Any, ...]) -> Any:
        """One pass of the module on inputs already on this backend's device, in eval mode (a module in
        training mode is handed back in it); what the module raises arrives as ModuleError."""
        module = model.module
        was_training = getattr(module, "training", False)
        if was_training:
            module.eval()
        try:
            return self._device_forward(lambda xs: module(*xs), inputs)
        except self._torch.cuda.OutOfMemoryError as e:
            raise OutOfMemoryError(f"{model.name} ran out of memory on {self.device} with a batch of "
                                   f"{rows_of(inputs)} rows") from e
        except Exception as e:
            shapes = ", ".join(f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for t in inputs)
            raise ModuleError(f"{model.name} raised {type(e).__name__} on a batch of {shapes}: {e}") from e
        finally:
            if was_training:
                module.train(True)

    def _placed(self, model: TorchModule) -> TorchModule:
        """The user's module on this backend's device (moved once per device, cached; the CPU: itself)."""
        if not self.on_gpu:
            return model
        per_device = _MODULES.setdefault(model, {})
        if self.device not in per_device:
            moved = copy.deepcopy(model.module).to(self.device) if hasattr(model.module, "to") else model.module
            per_device[self.device] = TorchModule(moved, model.name)
        return per_device[self.device]

    def _torch_module(self, model: OpaqueModel) -> TorchModule:
        if not isinstance(model, TorchModule):
            raise ArgumentError(self.runs(model).reason or f"{model.name} is not a torch module")
        return model

    def run_module(self, model: OpaqueModel, data: Any, batch_size: int) -> Outputs:
        """The module's outputs over all rows of ``data`` taken in consecutive batches of ``batch_size`` (the
        last one shorter), each output joined row-wise and in its own format."""
        model = self._torch_module(model)
        inputs, b = as_inputs(data, model), check_batch_size(batch_size)
        placed, n = self._placed(model), rows_of(inputs)
        batches = []
        for i in range(0, n, b):
            part = tuple(t.to(self.device) for t in slice_rows(inputs, i, min(n, i + b)))
            batches.append(outputs_of(self._module_forward(placed, part), rows_of(part)))
        return concat_outputs(batches)

    def measure_module(self, model: OpaqueModel, data: Any, timer: Timer | None = None,
                       memory: bool = True) -> TimedBatch:
        """Time forward passes of one batch (all rows of ``data``) under ``timer``. Memory: torch's peak
        counter on a GPU; on the CPU the peak RSS growth of one pass in a process of its own, the module taken
        there as its ``torch.export`` capture (:func:`batchcore.backends.pytorch_memory.module_rss_growth_bytes`); a module
        export cannot capture says why in ``memory``. ``memory=False`` skips it."""
        model = self._torch_module(model)
        inputs, timer = as_inputs(data, model), as_timer(timer)
        placed = self._placed(model)
        on_device = tuple(t.to(self.device) for t in inputs)
        if not self.on_gpu:
            timed = TimedBatch(timer.measure(lambda: self._module_forward(placed, on_device)),
                               clock="steady_clock in the core around the Python call")
            threads = self.threads or _core.default_threads()
            return self._with_cpu_memory(timed, memory, lambda: rss.module_rss_growth_bytes(model.module, inputs,
                                                                                              threads),
                                         rss.MODULE_METHOD)
        return self._measure_on_gpu(lambda: self._module_forward(placed, on_device), timer)

    def _measure_on_gpu(self, forward: Any, timer: Timer, flush: Any = None) -> TimedBatch:
        """CUDA events around blocks of ``forward()`` calls (``flush`` written before each, for cold
        passes), then torch's peak memory counter over one more call."""
        torch = self._torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def call() -> None:
            forward()
            torch.cuda.synchronize(self.device)

        sm_clock = _sm_clock_for(torch.device(self.device).index or 0, torch.cuda.current_stream(self.device).cuda_stream)
        sample = event_sampler(forward, start, end, start.elapsed_time,
                               None if flush is None else lambda: flush.add_(1), sm_clock)
        measurement = timer.measure(call, sample=sample)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        forward()
        torch.cuda.synchronize(self.device)
        return TimedBatch(measurement, torch.cuda.max_memory_allocated(self.device), None,
                          "torch.cuda.Event around the module call" + _clock_note(sm_clock),
                          "torch.cuda.max_memory_allocated (weights, input and caching-allocator blocks in use)")

    def _with_cpu_memory(self, timed: TimedBatch, memory: bool, growth: Any, method: str) -> TimedBatch:
        """``timed`` with the peak RSS growth that ``growth()`` measures in a process of its own, or why not."""
        if not memory:
            timed.memory = None
        elif not self.measure_memory:
            timed.memory = "not measured (measure_memory=False)"
        elif not rss.supported():
            timed.memory = "not measured (needs Linux's /proc/self/clear_refs)"
        else:
            try:
                timed.peak_bytes, timed.memory = growth(), method
            except BatchcoreError as e:  # a module torch.export cannot capture, a child that failed: say why, go on
                timed.memory = f"not measured ({e})"
        return timed

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        if not self.on_gpu:
            timed = super().measure(model, x, timer, cold)
            threads = self.threads or _core.default_threads()
            if isinstance(model, GraphModel):  # the source module itself, as torch.export captures it
                batch = (self._torch.from_numpy(x),)
                return self._with_cpu_memory(timed, memory, lambda: rss.module_rss_growth_bytes(
                    model.source_module, batch, threads), rss.MODULE_METHOD)
            return self._with_cpu_memory(timed, memory, lambda: rss.rss_growth_bytes(model, len(x), threads),
                                         rss.METHOD)
        torch, x = self._torch, check_input(model, x)
        module = self.module(model).eval()
        xd = torch.from_numpy(x).to(self.device)
        flush = _l2_flush_tensor(torch, self.device) if cold else None
        return self._measure_on_gpu(lambda: self._device_forward(module, xd), as_timer(timer), flush)

    def runs(self, model: Any) -> Runs:
        """Models batchcore reads (as their torch module: the one read, or one built from a chain's
        parameters) and any torch module run as it is."""
        if isinstance(model, OpaqueModel) and model.framework == "torch":
            return YES
        if isinstance(model, GraphModel) and model.source_framework != "torch":
            return Runs(False, f"{self.label} runs a graph model as the torch module it was read from; {model.name} "
                               f"was read from {model.source_framework or 'no module'}")
        return super().runs(model)

    def bounds_memory(self, budget_bytes: int | None) -> bool:
        return self.on_gpu  # torch's peak counter and its out-of-memory error, on a GPU

    def peak_bytes_if_fits(self, model: AnyModel, batch_size: int, budget_bytes: int | None = None) -> int | None:
        if not self.on_gpu:
            return super().peak_bytes_if_fits(model, batch_size, budget_bytes)
        torch, B = self._torch, check_batch_size(batch_size)
        module = self.module(model).eval()
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            self._device_forward(module, torch.zeros((B, *model.input_shape), device=self.device))
            torch.cuda.synchronize(self.device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return None
        peak = torch.cuda.max_memory_allocated(self.device)
        torch.cuda.empty_cache()
        return None if budget_bytes is not None and peak > budget_bytes else peak
