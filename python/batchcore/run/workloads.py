"""What a sweep runs, per kind of model: the outputs of all rows in batches of B, one timed batch, and
the record of a point. A :class:`ModelWork` runs a model batchcore reads (a chain or a graph: its FLOPs,
its exactly rounded reference and the machine's ceilings are known); a :class:`ModuleWork` runs a
framework's module as it is (each output compared in its own format; FLOPs and reference unknown).

Each work holds a **payload** (:class:`ModelPayload`, :class:`ModulePayload`): the model and its data and
nothing else, what a cell needs to compute outputs or a timed batch in another process or on another
machine (:mod:`batchcore.run.cells`). The rest (the exact reference, the labels, the probes, the record)
stays with the driver.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np

from .. import checks, files
from ..backends import Backend, NativeBackend, TimedBatch
from ..errors import ArgumentError, DeviceUnavailableError, ShapeError
from ..explain.bound import UNIT_ROUNDOFF, forward_error_bound
from ..explain.flips import flip_records, point_fields
from ..measure.probes import Probe
from ..measure.probes import probe as probe_device
from ..model.graph import AnyModel, GraphModel
from ..model.opaque import FLOAT_FORMATS, OpaqueModel, Output, Outputs, predictions_of
from ..results.sweep_result import make_module_point, make_point


def array_digest(a: np.ndarray | None) -> str | None:
    """A short hash of an array's bytes (None for None): what a result file says its data were."""
    return None if a is None else hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def rows(y: np.ndarray) -> np.ndarray:
    """Outputs as rows (a graph's samples may be N-D): what the bitwise and ULP comparisons take."""
    return y.reshape(len(y), -1)


def classes_of(shape: tuple[int, ...]) -> int | None:
    """The number of classes of outputs whose sample shape is ``shape`` (one dimension), else None."""
    return int(shape[0]) if len(shape) == 1 else None


def ceiling(backend: Backend, refresh: bool = False) -> Probe:
    """The probe a backend's points are held against: its GPU, or the CPU at its own thread count."""
    s = backend.settings()
    if s["device"] != "cpu":
        return probe_device(s["device"], refresh=refresh)
    return probe_device("cpu", threads=s.get("threads"), refresh=refresh)


class ModelPayload:
    """What a cell of a read model's sweep needs, wherever it runs: the model, its rows, cold or warm."""

    def __init__(self, model: AnyModel, data: np.ndarray, cold: bool, digest: str):
        self.model, self.data, self.cold, self.digest = model, data, cold, digest

    def outputs(self, backend: Backend, B: int) -> np.ndarray:
        return rows(backend.run_batched(self.model, self.data, B))

    def measure(self, backend: Backend, B: int, timer: Any, memory: bool) -> TimedBatch:
        return backend.measure(self.model, np.ascontiguousarray(self.data[:B]), timer, cold=self.cold, memory=memory)

    def warm(self, backend: Backend, B: int) -> None:
        """One untimed pass of the batch :meth:`measure` times."""
        backend.run(self.model, np.ascontiguousarray(self.data[:B]))


class ModulePayload:
    """What a cell of the sweep of a module run as it is needs: the module and its inputs."""

    def __init__(self, module: OpaqueModel, inputs: Any, digest: str):
        self.module, self.inputs, self.digest = module, inputs, digest

    def outputs(self, backend: Backend, B: int) -> Outputs:
        return backend.run_module(self.module, self.inputs, B)

    def measure(self, backend: Backend, B: int, timer: Any, memory: bool) -> TimedBatch:
        return backend.measure_module(self.module, self.module.rows(self.inputs, 0, B), timer, memory=memory)

    def warm(self, backend: Backend, B: int) -> None:
        """One untimed pass of the batch :meth:`measure` times."""
        backend.run_module(self.module, self.module.rows(self.inputs, 0, B), B)


def payload_digest(config: dict[str, Any], cold: bool = False) -> str:
    """What names a payload among a worker's cached ones: its model's and its data's digests, and cold."""
    return hashlib.sha256(f"{config['model_digest']}:{config['data_digest']}:{cold}".encode()).hexdigest()[:16]


class ModelWork:
    """A sweep of a model batchcore reads, over float32 ``data`` (or int64 token ids)."""

    def __init__(self, model: AnyModel, data: np.ndarray, labels: Any, backends: list[Backend], cold: bool,
                 ceilings: bool, probe: Any = ceiling):
        self.model, self.data, self.cold = model, data, cold
        classes = classes_of(model.output_shape) if isinstance(model, GraphModel) else model.output_width
        self.labels = None if labels is None else checks.labels(labels, len(data), classes)
        checks.require_allocatable(3 * 4 * len(data) * model.widest, f"a batch of {len(data)} rows")
        self.config = {"model": model.describe(), "model_digest": model.digest(), "rows": len(data),
                       "data_digest": array_digest(data), "labels_digest": array_digest(self.labels)}
        self.payload = ModelPayload(model, data, cold, payload_digest(self.config, cold))
        self._probe = probe
        self.probes: dict[str, Probe] = {}
        self.env_probes: dict[str, Any] = {}
        for b in backends if ceilings else []:
            try:
                self.probes[b.label] = probe(b)
                self.env_probes[b.label] = self.probes[b.label].to_dict()
            except DeviceUnavailableError as e:  # e.g. torch on a GPU in a build without batchcore's CUDA core
                self.env_probes[b.label] = {"unavailable": str(e)}
        self._exact: dict[str, np.ndarray] = {}
        self._bounds: dict[str, tuple[np.ndarray | None, str]] = {}
        self.classes = classes

    def bound(self, precision: str) -> tuple[np.ndarray | None, str]:
        """The rounding bound of every output in ``precision`` (:mod:`batchcore.explain.bound`), once per precision."""
        if precision not in self._bounds:
            self._bounds[precision] = (forward_error_bound(self.model, self.data, precision) if precision in UNIT_ROUNDOFF
                                       else (None, f"no unit roundoff is known for {precision}"))
        return self._bounds[precision]

    def outputs(self, backend: Backend, B: int) -> np.ndarray:
        return self.received(backend, self.payload.outputs(backend, B))

    def received(self, backend: Backend, y: np.ndarray) -> np.ndarray:
        """Outputs of ``backend`` computed here or by a cell elsewhere; the driver's own part: the correctly
        rounded reference in the backend's precision, computed once (every named order gives its bits on
        every machine, so the driver's are the reference of every node's)."""
        if backend.precision not in self._exact:
            exact = NativeBackend(order="exact", precision=backend.precision)
            self._exact[backend.precision] = rows(exact.run_batched(self.model, self.data, len(self.data)))
        return y

    def measure(self, backend: Backend, B: int, timer: Any, memory: bool) -> TimedBatch:
        return self.payload.measure(backend, B, timer, memory)

    def point(self, backend: Backend, B: int, y: np.ndarray, y_b1: np.ndarray, measured: TimedBatch | None) -> dict[str, Any]:
        exact = self._exact[backend.precision]
        p = make_point(backend, self.model, B, y, y_b1, exact, self.labels, measured, self.probes.get(backend.label))
        if (p["peak_frac"] or 0) > 1 and self.probes[backend.label].source != "measured":
            # Over the peak: the cached probe is stale (another moment, a throttled run). Measure it
            # again once, and hold this backend's points against the fresh one.
            self.probes[backend.label] = self._probe(backend, refresh=True)
            self.env_probes[backend.label] = self.probes[backend.label].to_dict()
            p = make_point(backend, self.model, B, y, y_b1, exact, self.labels, measured, self.probes[backend.label])
        p.update(files.json_safe(self.rounding_fields(backend.precision, y, y_b1, exact)))
        if (p["peak_frac"] or 0) > 1:
            warnings.warn(f"{backend.label} at B={B} ran at {100 * p['peak_frac']:.0f} % of a freshly measured "
                          "peak: the machine's speed changed during the sweep", stacklevel=4)
        return p


    def rounding_fields(self, precision: str, y: np.ndarray, y_b1: np.ndarray, exact: np.ndarray) -> dict[str, Any]:
        """The point's changed predictions explained (:mod:`batchcore.explain.flips`), and ``beyond_rounding``:
        the output elements farther from the exactly rounded output than rounding in the backend's precision
        can carry them (2 E: a nonzero count means the backend computed in less precision than it says)."""
        E, how = self.bound(precision)
        out: dict[str, Any] = {"beyond_rounding": None if E is None else
                               int(np.count_nonzero(np.abs(y.astype(np.float64) - exact) > 2 * E))}
        if self.classes is not None:
            out.update(point_fields(flip_records(y, y_b1, self.labels, E), how))
        return out


def first_logits(outputs: list[Output], name: str) -> np.ndarray:
    """The first floating output of shape (rows, classes): what predictions are read from."""
    for o in outputs:
        if o.fmt in FLOAT_FORMATS and o.values.ndim == 2:
            return np.asarray(o.values, dtype=np.float32)
    raise ShapeError(f"{name} returns no floating output of shape (rows, classes) to read predictions from "
                     f"(it returns {', '.join(f'{o.name} {o.fmt} {list(o.values.shape)}' for o in outputs)})")


class ModuleWork:
    """A sweep of a framework's module run as it is, over ``data`` in the module's own formats (its
    frontend converts nothing). ``inputs``: the data as that framework's backends take them."""

    def __init__(self, module: OpaqueModel, data: Any, labels: Any, sizes: list[int]):
        if data is None:
            raise ShapeError(f"a sweep of {module.name} needs data=: batchcore cannot know what a module it does not "
                             "read takes (an array or tensor, or a tuple of them, whose first dimension is the batch)")
        self.module, self.inputs = module, module.inputs(data)
        n = module.count(self.inputs)
        if max(sizes) > n:
            raise ShapeError(f"batch size {max(sizes)} exceeds the {n} rows of data: its bits would come from batches "
                             f"of {n}; pass more rows or smaller batch sizes")
        self.labels = None if labels is None else checks.labels(labels, n, per_row=None)
        self._labels_checked = False
        self.config = {"model": module.describe(), "model_digest": module.digest(), "rows": n,
                       "data_digest": module.inputs_digest(self.inputs), "labels_digest": array_digest(self.labels)}
        self.env_probes: dict[str, Any] = {}
        self.payload = ModulePayload(module, self.inputs, payload_digest(self.config))

    def outputs(self, backend: Backend, B: int) -> Outputs:
        return self.received(backend, self.payload.outputs(backend, B))

    def received(self, backend: Backend, y: Outputs) -> Outputs:
        """Outputs computed here or by a cell elsewhere, checked against the labels once."""
        if self.labels is not None and not self._labels_checked:
            predicted = predictions_of(y)
            if predicted is None:
                raise ShapeError(f"labels were given, but {self.module.name} returns no floating output of shape "
                                 f"(rows, ..., classes) to predict from ({', '.join(o.name for o in y)})")
            shape = predicted.values.shape
            checks.labels(self.labels, len(self.labels), shape[-1], tuple(shape[1:-1]))
            self._labels_checked = True
        return y

    def measure(self, backend: Backend, B: int, timer: Any, memory: bool) -> TimedBatch:
        return self.payload.measure(backend, B, timer, memory)

    def point(self, backend: Backend, B: int, y: Outputs, y_b1: Outputs, measured: TimedBatch | None) -> dict[str, Any]:
        return make_module_point(backend, B, y, y_b1, self.labels, measured)


def refuse_model_options(module: OpaqueModel, rows: Any, cold: bool) -> None:
    if rows is not None or cold:
        raise ArgumentError(f"{'rows=' if rows is not None else 'cold=True'} applies to models batchcore reads; "
                            f"the sweep of {module.name}, run as it is, runs the data= it is given, warm")
