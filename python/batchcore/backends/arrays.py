"""Array libraries as backends: NumPy on the CPU, CuPy on the GPU, through one forward pass written
with array operations."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..errors import ArgumentError, DeviceUnavailableError, MissingDependencyError
from ..measure.timing import Timer, as_timer
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from .base import Backend, Runs, TimedBatch, check_batch_size, check_input
from .cuda_events import _clock_note, _sm_clock_for, event_sampler

# Per model, its parameters as CuPy arrays (copied to the GPU once); an entry goes when its model does.
_DEVICE_PARAMS: weakref.WeakKeyDictionary[Model, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def require_chain(backend: Backend, model: Any) -> Model:
    """The array backends run chain models (their forward pass is written layer by layer); anything else
    gets ArgumentError saying who runs it."""
    verdict = backend.runs(model)
    if not verdict:
        raise ArgumentError(verdict.reason)
    return model


class NumpyBackend(Backend):
    """NumPy: ``x @ W.T + b`` through numpy's BLAS, activations with numpy (GELU: scipy's erf); a graph model
    operation by operation (:mod:`.array_graph`: convolutions as im2col rows through ``np.matmul``)."""

    name = "numpy"
    order = "library"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NumpyBackend:
        return cls()

    def default_for(self, model: Any) -> bool:
        """A sweep without ``backends=`` runs NumPy on chain models; on a graph model only when asked
        (``backends=[..., bc.numpy()]``): the defaults stay the framework's own runtime and the native core."""
        return not isinstance(model, GraphModel)

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        # Finite inputs may overflow in the model itself: that is a result (counted per point in
        # nonfinite_outputs, as for every backend), not a warning on the user's console.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if isinstance(model, GraphModel):
                from .array_graph import graph_forward

                return graph_forward(model, x)
            return array_forward(np, require_chain(self, model), x)


class CupyBackend(NumpyBackend):
    """CuPy on the GPU (``cupy.matmul``, cuBLAS). Needs cupy and a CUDA device. Parameters are copied to
    the device once per model. Chain models only (the graph pass is NumPy's)."""

    name = "cupy"
    device = "cuda"

    def runs(self, model: Any) -> Runs:
        if isinstance(model, GraphModel):
            return Runs(False, f"{self.label} runs chain models (bc.mlp, an nn.Sequential of Linear and row layers); "
                               f"{model.name!r} is a graph model: run it with bc.native(), bc.torch() or bc.numpy()")
        return super().runs(model)

    def __init__(self) -> None:
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

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s.update(cupy_version=self._cp.__version__, cuda_runtime=self._cp.cuda.runtime.runtimeGetVersion())
        return s

    def _device_params(self, model: AnyModel) -> list[dict[str, Any]]:
        model = require_chain(self, model)
        params = _DEVICE_PARAMS.get(model)
        if params is None:
            cp = self._cp
            params = _DEVICE_PARAMS[model] = [
                {k: cp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in layer.params.items()}
                for layer in model.layers]
        return params

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        model = require_chain(self, model)
        return self._cp.asnumpy(array_forward(self._cp, model, self._cp.asarray(x), self._device_params(model)))

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        model = require_chain(self, model)
        cp, x = self._cp, check_input(model, x)
        timer = as_timer(timer)
        params, xd = self._device_params(model), cp.asarray(x)
        flush = cp.zeros(max(2 * cp.cuda.Device().attributes["L2CacheSize"] // 4, 1), cp.float32) if cold else None
        start, end = cp.cuda.Event(), cp.cuda.Event()

        def call() -> None:
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
        return TimedBatch(measurement, pool.total_bytes(), None, "cupy.cuda.Event around the array calls" + _clock_note(sm_clock),
                        "cupy default memory pool total after one pass (input, parameters and intermediates)")

    def bounds_memory(self, budget_bytes: int | None) -> bool:
        return True  # cupy's memory pool, on the GPU

    def peak_bytes_if_fits(self, model: AnyModel, batch_size: int, budget_bytes: int | None = None) -> int | None:
        model = require_chain(self, model)
        cp, B = self._cp, check_batch_size(batch_size)
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


def _erf(xp: Any) -> Any:
    if xp is np:
        from scipy.special import erf  # a declared dependency

        return erf
    from cupyx.scipy.special import erf  # pragma: no cover - GPU only

    return erf


def array_forward(xp: Any, model: Model, x: Any, params: list[dict[str, Any]] | None = None) -> Any:
    """The model's forward pass written with array operations of ``xp`` (numpy or cupy), float32
    throughout; ``params``: per layer, the parameters as ``xp`` arrays (default: the model's own)."""
    f32 = xp.float32
    for i, layer in enumerate(model.layers):
        p = layer.params if params is None else params[i]
        if layer.kind == "linear":
            x = x @ xp.asarray(p["weight"]).T
            if p["bias"] is not None:
                x = x + xp.asarray(p["bias"])
        elif layer.kind == "relu":
            x = xp.maximum(x, f32(0))
        elif layer.kind == "gelu":
            x = f32(0.5) * x * (f32(1) + _erf(xp)(x * f32(1 / np.sqrt(2))).astype(f32))
        elif layer.kind == "silu":
            x = x / (f32(1) + xp.exp(-x))
        elif layer.kind == "tanh":
            x = xp.tanh(x)
        elif layer.kind == "softmax":
            e = xp.exp(x - x.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        elif layer.kind == "layer_norm":
            mean = x.mean(axis=1, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
            x = (x - mean) / xp.sqrt(var + f32(p["eps"])) * xp.asarray(p["weight"]) + xp.asarray(p["bias"])
        elif layer.kind == "batch_norm":
            x = x * xp.asarray(p["scale"]) + xp.asarray(p["shift"])
    return xp.ascontiguousarray(x.astype(f32, copy=False))
