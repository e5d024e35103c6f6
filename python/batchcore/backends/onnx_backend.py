"""ONNX Runtime as a backend: an ONNX model run exactly as a deployment runs it, one ``InferenceSession``
per model and backend, ``session.run`` per batch, on the CPU execution provider.

The session's options are the backend's settings and travel with every record: intra-op threads (default:
all cores, as the native core and torch), inter-op threads, the graph optimisation level ("all" is ONNX
Runtime's default: it fuses and may pick other kernels) and ``use_deterministic_compute`` (which promises
the same bits from run to run, not across batch sizes). The first run at each batch size is timed on its
own (``first_call_ms``: ONNX Runtime plans its buffers for a new shape there); the timer's samples never
include it. Memory: ONNX Runtime keeps no peak counter on the CPU, so the point says so.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .. import _core, checks, devices
from ..errors import ArgumentError, DeviceUnavailableError, DTypeError, ModuleError
from ..frontends.onnx.module import OnnxModule, import_onnxruntime, outputs_of
from ..measure.timing import Timer, as_timer
from ..model.array_inputs import ArrayInputs
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from ..model.opaque import OpaqueModel, Outputs, concat_outputs
from .base import YES, Backend, FirstCalls, Runs, TimedBatch, check_batch_size, check_input

OPTIMIZATION_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                       "all": "ORT_ENABLE_ALL"}
CPU_MEMORY = "not measured (ONNX Runtime keeps no peak counter on the CPU)"
CLOCK = "steady_clock in the core around session.run"


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU (see the module's docstring)."""

    name = "onnx"
    order = "library"

    def __init__(self, device: str = "cpu", threads: int | None = None, optimization: str = "all",
                 deterministic: bool = False, inter_op_threads: int | None = None):
        self._ort = import_onnxruntime()
        dev = devices.parse(device)
        if dev.kind != "cpu":
            raise DeviceUnavailableError(f"bc.onnx() runs ONNX Runtime's CPU execution provider; {device!r} is not "
                                         "supported yet (its CUDA provider needs onnxruntime-gpu and a GPU run to check)")
        self.device = "cpu"
        if optimization not in OPTIMIZATION_LEVELS:
            raise ArgumentError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, got {optimization!r}")
        self.optimization = optimization
        self.deterministic = checks.flag(deterministic, "deterministic")
        self.threads = checks.threads(threads) or _core.default_threads()
        self.inter_op_threads = checks.threads(inter_op_threads, "inter_op_threads") or 1
        self._sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._first_calls = FirstCalls()

    @property
    def label(self) -> str:
        switches = [f"opt={self.optimization}"] if self.optimization != "all" else []
        switches += ["deterministic"] if self.deterministic else []
        return f"onnx[{','.join(['cpu', *switches])}]"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> OnnxBackend:
        return cls(settings["device"], settings.get("threads"), settings.get("graph_optimization", "all"),
                   settings.get("use_deterministic_compute", False), settings.get("inter_op_threads"))

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s.update(onnxruntime_version=self._ort.__version__, providers=["CPUExecutionProvider"], threads=self.threads,
                 inter_op_threads=self.inter_op_threads, graph_optimization=self.optimization,
                 use_deterministic_compute=self.deterministic, execution_mode="sequential")
        return s

    def _options(self) -> Any:
        o = self._ort.SessionOptions()
        o.intra_op_num_threads = self.threads
        o.inter_op_num_threads = self.inter_op_threads
        o.graph_optimization_level = getattr(self._ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[self.optimization])
        o.use_deterministic_compute = self.deterministic
        o.log_severity_level = 3  # errors only: its warnings are about its own optimisations, not the user's model
        return o

    def session(self, model: OnnxModule) -> Any:
        """This backend's session of ``model`` (made once, then cached)."""
        if model not in self._sessions:
            try:
                self._sessions[model] = self._ort.InferenceSession(model.serialized, self._options(),
                                                                   providers=["CPUExecutionProvider"])
            except Exception as e:
                raise ModuleError(f"ONNX Runtime cannot load {model.name}: {type(e).__name__}: {e}") from e
        return self._sessions[model]

    def _run(self, model: OnnxModule, inputs: ArrayInputs) -> Outputs:
        session, feed = self.session(model), inputs.named(model.input_names)
        try:
            values = self._first_calls.call(model, inputs.shapes, lambda: session.run(model.output_names, feed))
        except ModuleError:
            raise
        except Exception as e:
            raise ModuleError(f"ONNX Runtime raised {type(e).__name__} on {inputs.rows} rows of {model.name}: {e}") from e
        return outputs_of(values, model.output_names, inputs.rows)

    # -- an ONNX model run as it is ---------------------------------------------------------------------
    def _module(self, model: Any) -> OnnxModule:
        if not isinstance(model, OnnxModule):
            raise ArgumentError(self.runs(model).reason or f"{model.name} is not an ONNX model")
        return model

    def run_module(self, model: OpaqueModel, data: Any, batch_size: int) -> Outputs:
        """The model's outputs over all rows of ``data`` in consecutive batches of ``batch_size`` (the last
        one shorter), one ``session.run`` each, joined row-wise."""
        m = self._module(model)
        inputs, b = m.inputs(data), check_batch_size(batch_size)
        return concat_outputs([self._run(m, inputs.part(slice(i, i + b))) for i in range(0, inputs.rows, b)])

    def measure_module(self, model: OpaqueModel, data: Any, timer: Timer | None = None, memory: bool = True) -> TimedBatch:
        """Time ``session.run`` on all rows of ``data`` as one batch; its first run at this batch size (in
        whichever phase it came) is recorded apart, never among the timer's samples."""
        m = self._module(model)
        inputs = m.inputs(data)
        feed, names, session = inputs.named(m.input_names), m.output_names, self.session(m)
        self._run(m, inputs)  # its errors, as ModuleError, before anything is timed
        timed = TimedBatch(as_timer(timer).measure(lambda: session.run(names, feed)), clock=CLOCK)
        timed.first_call_ms = self._first_calls.ms(m, inputs.shapes)
        timed.memory = CPU_MEMORY if memory else None
        return timed

    # -- a model batchcore read from ONNX: the very ONNX model it was read from --------------------------
    def _source(self, model: AnyModel) -> OnnxModule:
        if model.source_framework != "onnx" or not isinstance(model.source_module, OnnxModule):
            raise ArgumentError(self.runs(model).reason)
        return model.source_module

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        source = self._source(model)
        out = self._run(source, source.inputs(x))[0]
        if out.fmt != "fp32":
            raise DTypeError(f"{source.name}'s first output {out.name} is {out.fmt}, not float32")
        return out.values.reshape(len(x), -1) if isinstance(model, Model) else out.values

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        checks.flag(cold, "cold")
        if cold:
            raise ArgumentError(f"{self.label} times warm passes only")
        x = check_input(model, x)
        timed = self.measure_module(self._source(model), x, timer, memory)
        return timed

    def runs(self, model: Any) -> Runs:
        """ONNX models: run as they are, or read by ``bc.from_onnx`` (then the very model read)."""
        if isinstance(model, OpaqueModel):
            return YES if model.framework == "onnx" else super().runs(model)
        if isinstance(model, (Model, GraphModel)) and model.source_framework != "onnx":
            return Runs(False, f"{self.label} runs ONNX models; {model.name} was not read from one (bc.from_onnx; "
                               "a torch module: bc.export_onnx(module, sample, 'model.onnx') first)")
        return super().runs(model)
