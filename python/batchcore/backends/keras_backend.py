"""Keras 3 as a backend: the user's model run exactly as Keras runs it, on the backend Keras is configured
with (TensorFlow by default; JAX or PyTorch), on the CPU.

Two modes, the two ways users run a Keras model: ``predict`` is ``model.predict(x, batch_size=B,
verbose=0)`` over all the data (Keras's own batching, the last batch shorter, its compiled predict step);
``call`` is ``model(x_batch, training=False)`` per batch of B rows. The first call of each timed batch is
timed on its own and recorded (``first_call_ms``: tracing and compilation happen there when its shape is
new); the timer's samples never include it. Memory on the CPU: TensorFlow keeps no peak counter there
(``tf.config.experimental.get_memory_info("CPU:0")`` answers zeros), so the point says so instead of a
number.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import time
import weakref
from typing import Any

import numpy as np

from .. import checks
from ..errors import ArgumentError, DeviceUnavailableError, DTypeError, ModuleError
from ..frontends.keras.module import KerasModule, import_keras, outputs_of
from ..measure.timing import Timer, as_timer
from ..model.array_inputs import ArrayInputs
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from ..model.opaque import OpaqueModel, Output, Outputs, concat_outputs
from .base import YES, Backend, Runs, TimedBatch, check_batch_size, check_input

MODES = ("predict", "call")
CPU_MEMORY = ("not measured (Keras on the CPU: TensorFlow keeps no peak counter there, and batchcore has no "
              "process-of-its-own measurement for Keras yet)")


def _tf_facts() -> dict[str, Any]:
    """TensorFlow's settings that change a CPU pass's bits or speed: oneDNN (read once, at import, from
    TF_ENABLE_ONEDNN_OPTS), op determinism and the thread pools (0: TensorFlow's own choice)."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config
    from tensorflow.python.util import _pywrap_util_port

    return {"tensorflow_version": tf.__version__, "onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "op_determinism": bool(tf_config.is_op_determinism_enabled()),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


class KerasBackend(Backend):
    """Keras 3 on the CPU, in ``mode`` "predict" or "call" (see the module's docstring)."""

    name = "keras"
    order = "library"

    def __init__(self, mode: str = "predict"):
        if mode not in MODES:
            raise ArgumentError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self._keras = import_keras()
        self.mode = mode
        self.keras_backend = self._keras.config.backend()
        self.device = "cpu"
        self._placement()  # refuses a Keras backend that would compute elsewhere than the CPU
        self._first_calls: weakref.WeakKeyDictionary[Any, dict[int, float]] = weakref.WeakKeyDictionary()

    @property
    def label(self) -> str:
        on = "" if self.keras_backend == "tensorflow" else f",{self.keras_backend}"
        return f"keras[{self.mode}{on}]"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> KerasBackend:
        return cls(settings.get("mode", "predict"))

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s.update(mode=self.mode, keras_version=self._keras.__version__, keras_backend=self.keras_backend)
        if self.keras_backend == "tensorflow":
            s.update(_tf_facts())
        else:  # the version of the library Keras computes with, without importing it here
            s[f"{self.keras_backend}_version"] = importlib.metadata.version(self.keras_backend)
        return s

    def _placement(self) -> Any:
        """A context in which Keras computes on the CPU: TensorFlow's device scope; JAX and torch are
        checked to compute on the CPU by default (DeviceUnavailableError otherwise)."""
        if self.keras_backend == "tensorflow":
            import tensorflow as tf

            return tf.device("/CPU:0")
        if self.keras_backend == "jax":
            where = str(self._keras.distribution.list_devices()[0]).split(":")[0].lower()
        elif self.keras_backend == "torch":
            from keras.src.backend.torch.core import get_device

            where = str(get_device())
        else:
            raise DeviceUnavailableError(f"bc.keras() runs Keras on TensorFlow, JAX or torch, not {self.keras_backend}")
        if where != "cpu":
            raise DeviceUnavailableError(f"bc.keras() measures on the CPU; Keras on {self.keras_backend} computes on "
                                         f"{where} here (hide the GPU, e.g. CUDA_VISIBLE_DEVICES='')")
        return contextlib.nullcontext()

    def _done(self, result: Any) -> Any:
        """``result`` once computed: JAX dispatches asynchronously, so its arrays are waited for."""
        if self.keras_backend == "jax":
            self._keras.tree.map_structure(lambda t: t.block_until_ready() if hasattr(t, "block_until_ready") else t,
                                           result)
        return result

    # -- passes -----------------------------------------------------------------------------------------
    def _pass(self, keras_model: Any, feed: Any, rows: int, batch_size: int) -> Any:
        """One predict over ``feed`` in batches of ``batch_size``, or one call of the whole ``feed``."""
        try:
            with self._placement():
                if self.mode == "predict":
                    return keras_model.predict(feed, batch_size=batch_size, verbose=0)
                return self._done(keras_model(feed, training=False))
        except Exception as e:
            raise ModuleError(f"{keras_model.name} raised {type(e).__name__} on {rows} rows ({self.mode}): {e}") from e

    def _batches(self, keras_model: Any, inputs: ArrayInputs, batch_size: int) -> Outputs:
        """All rows in batches of ``batch_size``: one predict, or one call per batch (joined row-wise)."""
        n, b = inputs.rows, check_batch_size(batch_size)
        if self.mode == "predict":
            return outputs_of(self._pass(keras_model, inputs.feed(), n, b), n)
        parts = [inputs.part(slice(i, min(n, i + b))) for i in range(0, n, b)]
        return concat_outputs([outputs_of(self._pass(keras_model, p.feed(), p.rows, p.rows), p.rows) for p in parts])

    def _timed(self, key: Any, rows: int, forward: Any, timer: Timer | None, memory: bool, clock: str) -> TimedBatch:
        """``forward()`` timed under ``timer`` after its first call at this batch size was timed alone."""
        timer = as_timer(timer)
        firsts = self._first_calls.setdefault(key, {})
        if rows not in firsts:
            start = time.perf_counter_ns()
            forward()
            firsts[rows] = (time.perf_counter_ns() - start) / 1e6
        timed = TimedBatch(timer.measure(forward), clock=clock)
        timed.first_call_ms = firsts[rows]
        timed.memory = CPU_MEMORY if memory else None
        return timed

    # -- a Keras model run as it is ----------------------------------------------------------------------
    def _module(self, model: OpaqueModel) -> KerasModule:
        if not isinstance(model, KerasModule):
            raise ArgumentError(self.runs(model).reason or f"{model.name} is not a Keras model")
        return model

    def run_module(self, model: OpaqueModel, data: Any, batch_size: int) -> Outputs:
        """The model's outputs over all rows of ``data`` in batches of ``batch_size`` (predict's own batching,
        or one call per batch), each output in its own format."""
        m = self._module(model)
        return self._batches(m.model, m.inputs(data), batch_size)

    def measure_module(self, model: OpaqueModel, data: Any, timer: Timer | None = None, memory: bool = True) -> TimedBatch:
        """Time passes of one batch (all rows of ``data``): ``predict(x, batch_size=len(x))`` or one call."""
        m = self._module(model)
        inputs = m.inputs(data)
        feed, n = inputs.feed(), inputs.rows
        return self._timed(m, n, lambda: self._pass(m.model, feed, n, n), timer, memory,
                           f"steady_clock in the core around model.{'predict' if self.mode == 'predict' else '__call__'}")

    # -- a model batchcore read from Keras: the very Keras model it was read from ---------------------------
    def _source(self, model: AnyModel) -> Any:
        if model.source_framework != "keras":
            raise ArgumentError(self.runs(model).reason)
        return model.source_module

    def _rows(self, result: list[Output], rows: int) -> np.ndarray:
        if len(result) != 1 or result[0].fmt != "fp32":
            raise DTypeError(f"the Keras model returned {[(o.name, o.fmt) for o in result]}, not one float32 output")
        return result[0].values.reshape(rows, -1) if result[0].values.ndim > 2 else result[0].values

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        return self._rows(self._batches(self._source(model), ArrayInputs((x,)), len(x)), len(x))

    def run_batched(self, model: AnyModel, data: np.ndarray, batch_size: int) -> np.ndarray:
        data = check_input(model, data)
        return self._rows(self._batches(self._source(model), ArrayInputs((data,)), batch_size), len(data))

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        checks.flag(cold, "cold")
        if cold:
            raise ArgumentError(f"{self.label} times warm passes only (Keras copies its input into tensors of its own)")
        x = check_input(model, x)
        source = self._source(model)
        return self._timed(model, len(x), lambda: self._pass(source, x, len(x), len(x)), timer, memory,
                           f"steady_clock in the core around model.{'predict' if self.mode == 'predict' else '__call__'}")

    def reported_loss(self, model: Any, data: Any, labels: np.ndarray, batch_size: int) -> tuple[float | None, str]:
        """``model.evaluate(x, labels, batch_size=B)``'s loss, where the model was compiled with one."""
        if isinstance(model, OpaqueModel):
            keras_model, feed = self._module(model).model, self._module(model).inputs(data).feed()
        else:
            keras_model, feed = self._source(model), check_input(model, data)
        if getattr(keras_model, "loss", None) is None:
            return None, f"{keras_model.name} was not compiled with a loss (model.compile(loss=...))"
        try:
            with self._placement():
                found = keras_model.evaluate(feed, labels, batch_size=check_batch_size(batch_size), verbose=0,
                                             return_dict=True)
        except Exception as e:
            raise ModuleError(f"{keras_model.name}.evaluate raised {type(e).__name__}: {e}") from e
        loss = keras_model.loss
        name = loss if isinstance(loss, str) else getattr(loss, "name", None) or type(loss).__name__
        return float(np.float32(found["loss"])), f"model.evaluate(x, y, batch_size=B) with loss {name}"

    def runs(self, model: Any) -> Runs:
        """Keras models: run as they are, or read by ``bc.from_keras`` (then the very model read)."""
        if isinstance(model, OpaqueModel):
            return YES if model.framework == "keras" else super().runs(model)
        if isinstance(model, (Model, GraphModel)) and model.source_framework != "keras":
            return Runs(False, f"{self.label} runs Keras models; {model.name} was not read from one (bc.from_keras)")
        return super().runs(model)
