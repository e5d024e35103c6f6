"""What every backend is: the Backend interface, the record of a timed batch, and the input checks
all of them share."""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core, checks
from ..errors import ArgumentError, ShapeError
from ..info import last_level_cache_bytes
from ..measure.timing import Measurement, Timer, as_timer
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel, check_token_ids
from ..model.opaque import OpaqueModel, Outputs


@dataclass
class TimedBatch:
    """A batch timed by a backend: the timer's statistics (a :class:`~batchcore.measure.timing.Measurement`), the
    memory the forward pass held at its peak (bytes, or None where it cannot be measured honestly), the
    planner's prediction (native only, bytes), how both the time and the memory were measured, and the
    first call's own time (ms) where a backend traces or compiles there (Keras), else None."""

    timing: Measurement
    peak_bytes: int | None = None
    predicted_bytes: int | None = None
    clock: str = "steady_clock in the C++ core"
    memory: str | None = None
    first_call_ms: float | None = None


class FirstCalls:
    """The first call's own time (ms) per model and input shape: where a runtime compiles (XLA) or plans its
    buffers (ONNX Runtime) for a shape it has not seen, whichever phase of a sweep makes that call."""

    def __init__(self) -> None:
        self._ms: weakref.WeakKeyDictionary[Any, dict[Any, float]] = weakref.WeakKeyDictionary()

    def call(self, model: Any, shape: Any, fn: Callable[[], Any]) -> Any:
        """``fn()``, timed when it is the first call of ``model`` at ``shape``."""
        seen = self._ms.setdefault(model, {})
        if shape in seen:
            return fn()
        start = time.perf_counter_ns()
        out = fn()
        seen[shape] = (time.perf_counter_ns() - start) / 1e6
        return out

    def ms(self, model: Any, shape: Any) -> float | None:
        return self._ms.get(model, {}).get(shape)


def cold_input_bytes() -> int:
    """Bytes of input copies a cold CPU measurement rotates through: twice the last-level cache."""
    llc = last_level_cache_bytes()
    if not llc:
        raise ArgumentError("cold timing on the CPU needs the last-level cache's size, which this system "
                            "does not report (/sys/devices/system/cpu/cpu*/cache)")
    return 2 * llc


def cold_copies(input_bytes: int) -> int:
    """Copies of an input of ``input_bytes`` that hold :func:`cold_input_bytes` (at least 2); the core's
    Model.cold_copies counts the same way."""
    return max(2, -(-cold_input_bytes() // input_bytes))


@dataclass(frozen=True)
class Runs:
    """Whether a backend runs a model: true, or false with the ``reason`` (a sentence a user can act on)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


YES = Runs(True)


def check_input(model: AnyModel, x: Any, finite: bool = True) -> np.ndarray:
    """``x`` as a validated (B, *model.input_shape) float32 C-contiguous array; with ``finite``, also free
    of NaN and Inf. The core checks (``_core.check_rows``, ``_core.check_samples``): the same code that
    guards its own bindings, so a bad input raises the same class with the same message through every
    backend. The native backend passes ``finite=False``: its forward pass makes the scan anyway."""
    if isinstance(model, GraphModel):
        if model.input_dtype == "int64":
            return check_token_ids(x, model.input_shape)
        _core.check_samples(x, list(model.input_shape), finite)
        return x
    if not isinstance(model, Model):
        raise ArgumentError(f"model must be a batchcore Model (bc.mlp(...) or bc.from_torch(module)), got {model!r}")
    _core.check_rows(x, model.input_width, finite)  # the bindings' own checks: one rule, one class, one message
    return x


def check_batch_size(batch_size: Any) -> int:
    """A batch size: a positive integer (ShapeError otherwise, as for every shape)."""
    return checks.positive_int(batch_size, "batch size", ShapeError, maximum=2**62)


# Each kind of backend by its ``name``, for :func:`from_settings` (every subclass registers itself).
KINDS: dict[str, type[Backend]] = {}


def from_settings(settings: dict[str, Any]) -> Backend:
    """The backend a record's ``settings()`` describe, made anew (in this process, or another one: a
    worker, another machine). What the settings name is checked again as when the backend was first made."""
    kind = settings.get("kind")
    if kind not in KINDS:
        raise ArgumentError(f"settings of an unknown kind of backend ({kind!r}; known: {sorted(KINDS)})")
    return KINDS[kind].from_settings(settings)


class Backend:
    """Base class. Subclasses set ``name``, ``device``, ``precision``, ``order``, implement ``_forward``
    and :meth:`from_settings`.

    A backend travels by its settings: pickling one (to a worker process, another machine) sends
    ``settings()`` and makes the backend anew there (:func:`from_settings`); nothing it caches travels."""

    name = "backend"
    device = "cpu"
    precision = "fp32"
    order = "library"

    @property
    def label(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<batchcore backend {self.label}>"

    def runs(self, model: Any) -> Runs:
        """Whether this backend runs ``model`` (the seam between frontends and backends: a sweep asks every
        backend before it runs anything). The base runs the models batchcore reads (chains and graphs);
        a framework's module run as it is only by that framework's backends."""
        if isinstance(model, (Model, GraphModel)):
            return YES
        if isinstance(model, OpaqueModel):
            return Runs(False, f"{self.label} cannot run {model.name}, a {model.framework} module batchcore runs as "
                               f"it is; that framework's backends run it")
        return Runs(False, f"{model!r} is not a batchcore model (bc.mlp(...), bc.from_torch(module))")

    def default_for(self, model: Any) -> bool:
        """Whether a sweep without ``backends=`` includes this backend for ``model`` (one it runs)."""
        return True

    def bounds_memory(self, budget_bytes: int | None) -> bool:
        """Whether :meth:`peak_bytes_if_fits` can answer under ``budget_bytes`` (None: the device's own
        memory): what :func:`batchcore.largest_batch` needs. The base cannot."""
        return False

    def run(self, model: AnyModel, x: np.ndarray) -> np.ndarray:
        return self._forward(model, check_input(model, x))

    def run_batched(self, model: AnyModel, data: np.ndarray, batch_size: int) -> np.ndarray:
        data = check_input(model, data)
        b = check_batch_size(batch_size)
        return np.concatenate([self._forward(model, data[i : i + b]) for i in range(0, len(data), b)])

    def measure(self, model: AnyModel, x: np.ndarray, timer: Timer | None = None, cold: bool = False,
                memory: bool = True) -> TimedBatch:
        """Time forward passes of the batch ``x`` under ``timer`` (default:
        :func:`~batchcore.measure.timing.default_timer`). ``cold``: no pass finds its input in a cache
        (CPU: each pass reads the next of copies of ``x`` that together hold twice the last-level cache;
        GPU: the L2 is flushed before every pass). ``memory=False`` skips a memory measurement that costs
        time of its own (torch on the CPU: a process of its own)."""
        x = check_input(model, x)
        timer = as_timer(timer)
        checks.flag(cold, "cold")
        if not cold:
            return TimedBatch(timer.measure(lambda: self._forward(model, x)),
                            clock="steady_clock in the core around the Python call")
        # One block of copies, passed as views: a small input on a machine with a large last-level cache
        # needs millions of them, which made one by one took longer than the measurement itself.
        copies = np.empty((cold_copies(x.nbytes), *x.shape), x.dtype)
        copies[...] = x
        turn = itertools.count()
        return TimedBatch(timer.measure(lambda: self._forward(model, copies[next(turn) % len(copies)])),
                        clock="steady_clock in the core around the Python call; inputs rotated (cold)")

    def peak_bytes_if_fits(self, model: AnyModel, batch_size: int, budget_bytes: int | None = None) -> int | None:
        """The peak bytes of one forward pass of ``batch_size`` rows when it fits (in ``budget_bytes``
        where given), None after an out-of-memory error (everything freed). Backends that cannot bound
        their memory refuse with ArgumentError."""
        raise ArgumentError(f"{self.label} cannot bound or catch its memory use; largest_batch() supports "
                            "bc.native() (CPU with a budget, or GPU), and torch and cupy on a GPU")

    def run_module(self, model: OpaqueModel, data: Any, batch_size: int) -> Outputs:
        """A framework's module run as it is over all rows of ``data`` in batches of ``batch_size``: its
        outputs (:class:`~batchcore.model.opaque.Output`). Only that framework's backends run it."""
        raise ArgumentError(self.runs(model).reason)

    def measure_module(self, model: OpaqueModel, data: Any, timer: Timer | None = None, memory: bool = True) -> TimedBatch:
        """Time passes of ``model`` (run as it is) over all rows of ``data`` as one batch."""
        raise ArgumentError(self.runs(model).reason)

    def reported_loss(self, model: Any, data: Any, labels: np.ndarray, batch_size: int) -> tuple[float | None, str]:
        """The loss the framework's own evaluation reports over all rows of ``data`` in batches of
        ``batch_size`` (Keras: ``model.evaluate``), as (float32 value, how), or (None, why not). The base:
        a backend whose framework has no evaluation of its own."""
        return None, f"{self.label} has no evaluation of its own"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a kind of its own (a subclass that keeps its parent's name is no new kind)
            KINDS[cls.name] = cls

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Backend:
        """This kind of backend, made from its ``settings()``."""
        raise ArgumentError(f"{cls.name} backends cannot be made from settings")  # pragma: no cover - abstract

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return from_settings, (self.settings(),)

    def settings(self) -> dict[str, Any]:
        """What identifies this backend's configuration in a result record; enough to make it anew
        (:func:`from_settings`)."""
        return {"kind": self.name, "backend": self.label, "device": self.device, "precision": self.precision,
                "order": self.order}

    def _forward(self, model: AnyModel, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
