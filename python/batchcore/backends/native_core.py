"""batchcore's own core as a backend: every accumulation order named and fixed, timed and
memory-tracked inside the core, on the CPU or a GPU."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .. import _core, checks, devices
from ..errors import ArgumentError, DeviceUnavailableError, OutOfMemoryError, ShapeError
from ..measure.orders import run_options
from ..measure.timing import Measurement, Timer, as_timer
from ..model.chain import ACTIVATIONS, Model
from ..model.graph import GRAPH_OPS, OPTIONAL_PARAMS, VARIADIC_OPS, AnyModel, GraphModel
from .base import Backend, TimedBatch, check_batch_size, check_input, cold_input_bytes

# What the core builds from a model (weights copied and packed; on a GPU, copied to the device), made once
# per model and shared by every native backend; an entry goes when its model does.
_CPU_MODELS: weakref.WeakKeyDictionary[Model | GraphModel, _core.Model | _core.Graph] = weakref.WeakKeyDictionary()
_GPU_MODELS: weakref.WeakKeyDictionary[Model, dict[int, Any]] = weakref.WeakKeyDictionary()


def cpu_model(model: AnyModel) -> Any:
    """The core's copy of ``model`` (a ``_core.Model``, or a ``_core.Graph`` for a graph model; built on
    first use, then cached while the model lives)."""
    core = _CPU_MODELS.get(model)
    if core is None:
        core = _CPU_MODELS[model] = _build_core_graph(model) if isinstance(model, GraphModel) else _build_core_model(model)
    return core


def gpu_model(model: AnyModel, index: int) -> Any:
    """The core's copy of ``model`` on CUDA device ``index`` (DeviceUnavailableError without ``_cuda``)."""
    from ..info import cuda_module

    if isinstance(model, GraphModel):
        raise DeviceUnavailableError(f"{model.name} is a graph model (convolutions, residuals, ...): the CUDA core "
                                     "runs chain models only so far; run it with bc.native() on the CPU or bc.torch()")
    per_device = _GPU_MODELS.setdefault(model, {})
    if index not in per_device:
        cu = cuda_module()
        if cu is None:
            raise DeviceUnavailableError("batchcore was built without CUDA: no GPU model can be made")
        per_device[index] = cu.DeviceModel(cpu_model(model), index)
    return per_device[index]


def _as_core_input(model: AnyModel, x: np.ndarray) -> np.ndarray:
    """What the core reads: the input itself, or token ids (int64, checked below 2**24) as the float32
    values that hold them exactly."""
    return x.astype(np.float32) if isinstance(model, GraphModel) and model.input_dtype == "int64" else x


def _build_core_model(model: Model) -> _core.Model:
    core = _core.Model(model.input_width)
    for layer in model.layers:
        p = layer.params
        if layer.kind == "linear":
            core.add_linear(p["weight"], p["bias"])
        elif layer.kind in ACTIVATIONS:
            core.add_activation(layer.kind)
        elif layer.kind == "softmax":
            core.add_softmax()
        elif layer.kind == "layer_norm":
            core.add_layer_norm(p["weight"], p["bias"], float(p["eps"]))
        elif layer.kind == "batch_norm":
            core.add_batch_norm(p["scale"], p["shift"])
    return core


def _build_core_graph(model: GraphModel) -> _core.Graph:
    """A new core graph with the model's operations and parameters (cached per model by :func:`cpu_model`)."""
    graph = _core.Graph(list(model.input_shape))
    for i, n in enumerate(model.nodes[1:], start=1):
        method, names = GRAPH_OPS[n.op]
        try:
            inputs = [list(n.inputs)] if n.op in VARIADIC_OPS else list(n.inputs)  # concat: its inputs as one list
            made = getattr(graph, method)(*inputs, *(n.params.get(k) if k in OPTIONAL_PARAMS else n.params[k]
                                                     for k in names))
        except (KeyError, TypeError) as e:
            raise ShapeError(f"graph node {i} ({n.name}): parameters {sorted(n.params)} do not fit {n.op}: {e}") from e
        if made != i:  # pragma: no cover - the core numbers values in the order they are added
            raise ShapeError(f"graph node {i} became value {made}")
        if tuple(graph.shape_of(i)) != tuple(n.shape):
            raise ShapeError(f"graph node {i} ({n.name}, {n.op}) makes samples of {tuple(graph.shape_of(i))}, "
                             f"its reader's of {tuple(n.shape)}")
    graph.set_output(model.output)
    return graph


class NativeBackend(Backend):
    """batchcore's C++ core: every accumulation order named and fixed, timed and memory-tracked inside.

    Its settings are parsed once, into ``options`` (a :class:`batchcore.measure.orders.RunOptions`), and that
    object is what every call hands to the core."""

    name = "native"

    def __init__(self, order: str = "seq", precision: str = "fp32", policy: str | None = None,
                 threads: int | None = None, device: str = "cpu", simd: str = "auto"):
        self._device = devices.parse(device)
        self.device = str(self._device)
        self.options = run_options(order, precision, policy, threads, simd)
        self.order = str(self.options.order)
        self.precision = self.options.precision
        self.policy = self.options.policy
        self.threads = self.options.threads
        if not self.on_gpu:  # the GEMM's scheduling measured on this machine, once per process (never a bit)
            from ..measure.tuning import ensure_tuned

            ensure_tuned()

    @property
    def on_gpu(self) -> bool:
        return self._device.kind == "cuda"

    @property
    def label(self) -> str:
        what = "library-like" if self.policy == "library-like" else self.order
        extra = "" if self.precision == "fp32" else f",{self.precision}"
        where = f"{self.device}:" if self.on_gpu else ""
        return f"native[{where}{what}{extra}]"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NativeBackend:
        s = settings
        return cls(s["order"], s["precision"], s.get("policy"), s.get("threads"), s["device"], s.get("simd", "auto"))

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s.update(policy=self.policy)
        if not self.on_gpu:
            from ..measure.tuning import in_force

            s.update(threads=self.threads, simd=self.options.simd, gemm_tuning=in_force().to_dict())
        return s

    def core_model(self, model: AnyModel) -> Any:
        """The core's model this backend runs: a ``_core.Model``, or a ``_cuda.DeviceModel`` on a GPU."""
        return gpu_model(model, self._device.index) if self.on_gpu else cpu_model(model)

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        return self.core_model(model).run(_as_core_input(model, x), self.options)[0]

    def run(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        return self._forward(model, check_input(model, x, finite=False))  # the core scans for NaN and Inf

    def run_batched(self, model: AnyModel, data: np.ndarray, batch_size: int) -> np.ndarray:
        if self.on_gpu:  # one device call per batch, each a whole forward pass
            return super().run_batched(model, data, batch_size)
        data = check_input(model, data, finite=False)
        b = min(check_batch_size(batch_size), len(data))  # one batch of everything past len(data)
        return cpu_model(model).run_batched(_as_core_input(model, data), b, self.options)

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        x = check_input(model, x, finite=False)
        timer = as_timer(timer)
        checks.flag(cold, "cold")
        extra = dict(cold=cold) if self.on_gpu else dict(cold_bytes=cold_input_bytes() if cold else 0)
        _, summary, peak, predicted = self.core_model(model).measure(_as_core_input(model, x), timer.policy(),
                                                                     self.options, **extra)
        clock = ("CUDA events on the core's stream; samples under 75 % of the default SM clock discarded"
                 if self.on_gpu else "steady_clock in the C++ core")
        return TimedBatch(Measurement.from_summary(summary, timer), peak, predicted, clock, "tracked allocator (exact)")

    def plan_bytes(self, model: AnyModel, batch_size: int) -> int:
        """Exact bytes a forward pass of ``batch_size`` rows holds at its peak (weights included)."""
        return self.core_model(model).plan_bytes(check_batch_size(batch_size), self.options)

    def bounds_memory(self, budget_bytes: int | None) -> bool:
        return budget_bytes is not None or self.on_gpu  # the core tracks every byte; the CPU has no limit of its own

    def peak_bytes_if_fits(self, model: AnyModel, batch_size: int, budget_bytes: int | None = None) -> int | None:
        if budget_bytes is None and not self.on_gpu:
            raise ArgumentError("native on the CPU: largest_batch() needs budget_bytes (the search does not "
                                "exhaust the machine's memory)")
        core = self.core_model(model)
        B = check_batch_size(batch_size)
        core.memory_limit = -1 if budget_bytes is None else int(budget_bytes)
        try:
            if self.on_gpu:
                return core.run_zeros(B, self.options)
            # The zero input is only made once the plan fits the budget: at B = 2**40 the plan says no
            # before numpy is asked for terabytes.
            if budget_bytes is not None and self.plan_bytes(model, B) > budget_bytes:
                return None
            checks.require_allocatable(4 * B * model.input_width, f"a probe batch of {B} rows")
            try:
                zeros = np.zeros((B, *model.input_shape), np.float32)
            except MemoryError:  # more than the process may map (an address-space limit): it does not fit
                return None
            return core.run(zeros, self.options)[1]
        except OutOfMemoryError:
            return None
        finally:
            core.memory_limit = -1
