"""``sweep()``: run one model through several backends, batch size by batch size, and compare.

For every backend and batch size B the data are processed in consecutive batches of B rows (the last
one shorter), exactly as a user's evaluation loop does, and the outputs are compared bit by bit with
the same backend at B=1 and with the ``exact`` order (correctly rounded linear layers). One batch of
exactly B rows is also timed. Each measured point is appended to a JSON-lines file as soon as it exists
(``out=``), so an interrupted sweep loses nothing and a rerun resumes where it stopped.

One pipeline for every kind of model: resolve the model (:func:`resolve_model`: read by its frontend,
or run as it is), plan its cells (:mod:`batchcore.run.plan`), run them locally, record each point.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from os import PathLike
from typing import Any

import numpy as np

from .. import checks, devices, files
from ..backends import Backend, TimedBatch, check_input, native
from ..backends import cupy as cupy_backend
from ..backends import numpy as numpy_backend
from ..backends import torch as torch_backend
from ..errors import ArgumentError, BatchcoreError, DeviceUnavailableError, DTypeError, ShapeError, UnsupportedLayerError
from ..explain.points import explain_points
from ..frontends import frontend_of
from ..info import info
from ..measure.timing import Measurement, Timer, as_timer
from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel
from ..model.opaque import OpaqueModel
from ..present.progress import Steps, enabled
from ..results.sweep_result import SweepResult
from .distributed import Driver
from .executors import as_cell_executor
from .plan import cells, check_backends, check_batch_sizes, output_tasks, require_runs
from .workloads import ModelWork, ModuleWork, ceiling, refuse_model_options

DEFAULT_BATCH_SIZES = (1, 2, 3, 8, 64, 256, 1024)

__all__ = ["DEFAULT_BATCH_SIZES", "check_backends", "check_batch_sizes", "default_backends", "read_model",
           "resolve_data", "resolve_model", "sweep"]


def _sample_shape(data: Any) -> tuple[int, ...] | None:
    """One sample's shape in ``data`` (an array or tensor whose first dimension is the batch), if it has one."""
    shape = getattr(data, "shape", None)
    return tuple(int(d) for d in shape[1:]) if shape is not None and len(shape) >= 2 else None


def _several_inputs(data: Any) -> bool:
    """Whether ``data`` is several arrays (a list, tuple or dict of them): a module's several inputs."""
    parts = list(data.values()) if isinstance(data, dict) else data if isinstance(data, (list, tuple)) else []
    return bool(parts) and all(getattr(p, "shape", None) is not None for p in parts)


def resolve_model(model: Any, backends: list[Backend], data: Any, required: bool = True) -> AnyModel | OpaqueModel:
    """What the sweep runs: a batchcore model as it is; a framework's module wrapped as it is when every
    backend runs it so (no reading needed), else read by its frontend (``bc.from_torch`` with the data's
    sample shape and dtype) so that the other backends run it too; a module its frontend cannot read
    stays wrapped, and the backends that cannot run it are refused, saying why. Every backend is asked
    (``Backend.runs``) before anything runs; ``required=False`` (default backends): only that some does."""
    def checked(found: AnyModel | OpaqueModel, why: str = "") -> AnyModel | OpaqueModel:
        if required or not any(b.runs(found) for b in backends):
            require_runs(found, backends, why)
        return found

    if isinstance(model, (Model, GraphModel, OpaqueModel)):
        return checked(model)
    frontend = frontend_of(model)
    try:
        wrapped: OpaqueModel | None = frontend.wrap(model)
        wrap_error: BatchcoreError | None = None
    except BatchcoreError as e:  # e.g. a module of mixed dtypes: reading may still take it
        wrapped, wrap_error = None, e
    if wrapped is not None and all(b.runs(wrapped) for b in backends):
        return wrapped
    if data is not None and _sample_shape(data) is None:  # the data, not the module, is what is wrong
        if wrap_error is not None:  # unless the module cannot run as it is either: that says more
            raise wrap_error
        if wrapped is not None and _several_inputs(data):  # its own backends run it; the others are refused, saying why
            return checked(wrapped, f"{frontend.reader} reads a module with one input array, and the data is a "
                                    f"{type(data).__name__}")
        raise DTypeError(f"data must be a numpy array or a torch tensor whose first dimension is the batch, got a "
                         f"{type(data).__name__}: {frontend.reader} reads the module with one sample's shape and dtype")
    data_dtype = str(getattr(data, "dtype", "")).removeprefix("torch.")
    try:
        if data_dtype.startswith(("int", "uint")) and data_dtype != "int64":
            raise DTypeError(f"token ids are read as int64 and the data is {data_dtype} (nothing is converted "
                             "silently: pass data.astype(np.int64))")
        read = frontend.read(model, _sample_shape(data), "int64" if data_dtype == "int64" else "float32")
    except (UnsupportedLayerError, DTypeError) as e:
        if wrapped is None:
            raise (wrap_error if isinstance(e, UnsupportedLayerError) else e) from e  # type: ignore[misc]
        return checked(wrapped, f"{frontend.reader} does not read it ({e}); the {frontend.name} backends run any "
                                f"module as it is ({frontend.backends_hint})")
    return checked(read)


def read_model(module: Any, data: Any) -> AnyModel | str:
    """The batchcore model of ``module``: itself when it is one, else read by its frontend with the data's
    sample shape (what the rounding bound of a framework's module needs, even where its backends run it as
    it is); or, in words, why there is none."""
    if isinstance(module, (Model, GraphModel)):
        return module
    if isinstance(module, OpaqueModel):
        return f"{module.name} is run as it is (read it with its frontend, e.g. bc.from_torch, for a bound)"
    shape = _sample_shape(data)
    if shape is None:
        return "the data is not one array whose first dimension is the batch"
    dtype = "int64" if str(getattr(data, "dtype", "")).removeprefix("torch.") == "int64" else "float32"
    try:
        return frontend_of(module).read(module, shape, dtype)
    except BatchcoreError as e:
        return f"batchcore does not read the module ({e})"


def resolve_data(model: AnyModel, data: Any, rows: Any, seed: Any, sizes: list[int]) -> np.ndarray:
    """The rows a read model's sweep runs: ``data`` checked (a torch tensor taken as its numpy view), or
    ``rows`` standard-normal rows drawn with ``seed``."""
    seed = checks.seed(seed)
    if data is None:
        if isinstance(model, GraphModel) and model.input_dtype == "int64":
            raise ShapeError(f"{model.name} takes token ids: pass data= (an int64 array of shape (rows, "
                             f"{', '.join(map(str, model.input_shape))}))")
        rows = max(512, max(sizes)) if rows is None else checks.positive_int(rows, "rows", ShapeError)
        checks.require_allocatable(4 * rows * model.input_width, f"{rows} rows of data")
        data = np.random.default_rng(seed).standard_normal((rows, *model.input_shape), dtype=np.float32)
    elif rows is not None:
        raise ArgumentError("pass data= or rows=, not both")
    elif type(data).__module__.startswith("torch") and hasattr(data, "numpy"):
        data = data.detach().cpu().numpy()  # the same dtype and bits (a view on the CPU): no conversion
    data = check_input(model, data)
    if max(sizes) > len(data):
        raise ShapeError(f"batch size {max(sizes)} exceeds the {len(data)} rows of data: its bits would come from "
                         f"batches of {len(data)}; pass more rows (rows=, data=) or smaller batch sizes")
    return data


def default_backends(device: str = "auto") -> list[Backend]:
    """native seq, numpy and torch (when installed) on the CPU; on a GPU native seq, torch and cupy
    (those installed) on that GPU."""
    dev = devices.parse(device)
    if dev.kind == "cuda":
        found: list[Backend] = [native(device=str(dev))]
        for make in (lambda: torch_backend(device=str(dev)), cupy_backend):
            try:
                found.append(make())
            except (ImportError, DeviceUnavailableError):
                pass
        return found
    found = [native(), numpy_backend()]
    try:
        found.insert(0, torch_backend())
    except ImportError:
        pass
    return found


def sweep(model: Model | Any, batch_sizes: Iterable[int] = DEFAULT_BATCH_SIZES, backends: Iterable[Backend] | None = None,
          data: np.ndarray | None = None, labels: Any = None, rows: int | None = None, timer: Timer | None = None,
          out: str | PathLike[str] | None = None, seed: int = 0, device: str = "auto", cold: bool = False,
          ceilings: bool = True, rounds: int = 6, progress: bool | None = None, explain: bool = False,
          executor: Any = None, timing: bool = True) -> SweepResult:
    """Measure what the batch size changes, per backend: bits, speed, memory.

    model: a :class:`Model` (``bc.mlp`` or ``bc.from_torch``), or a torch module or callable: read by
    ``from_torch`` when it can be, else run as it is by torch backends only (any input of any shape,
    outputs tensors, tuples or dicts, float32/float16/bfloat16; see :mod:`batchcore.frontends.torch.module`).
    batch_sizes: batch sizes to measure (B=1 is always computed as the reference).
    backends: list of backends (default: :func:`default_backends` on ``device``, less those that do not
    run the model).
    data: (rows, inputs) float32 array with at least max(batch_sizes) rows; default ``rows``
    standard-normal rows drawn with ``seed`` (default: max(512, the largest batch size)). For a module
    run as it is: required, a numpy array or torch tensor (or a tuple of them) whose first dimension is
    the batch, in the module's own dtype (nothing is converted).
    labels: optional integer class per row (each a class of the model's output), for accuracy.
    timer: the measurement policy of every point (default ``bc.Timer()``: 1 % target, 0.5 s minimum, or
    with the settings ``$BATCHCORE_TIMER`` names: :func:`batchcore.measure.timing.default_timer`); times
    are in milliseconds.
    device: where the default backends run ("auto": the GPU when the core sees one).
    cold: flush the caches before every timed pass (GPU backends).
    ceilings: put every point's GFLOP/s in proportion to the device's measured ceilings (:func:`batchcore.probe`,
    cached per machine): ``peak_frac`` (of the fma peak) and ``roofline_frac`` (of min(peak, bandwidth x
    intensity), intensity in flop per byte of :meth:`Model.min_traffic_bytes`). The probes used are in
    ``env["probes"]``.
    rounds: every point is timed in this many interleaved rounds (all points, then all points again),
    each under ``timer.per_round(rounds)``: the same total time, and a median interval that also spans
    the rounds' medians (see :meth:`Measurement.pooled`), so that a slow spell of the machine shows as
    width, not as a false difference. ``rounds=1``: each point timed once, start to end.
    out: path of a JSON-lines file: each point is appended as soon as its last round is measured; an
    existing file of the same sweep is resumed (its points are kept, not re-measured).
    explain: add to each point the summation tree its backend used for the model's first linear layer at
    its batch size (``bc.reveal``; ``point["explain"]``, and ``SweepResult.why()`` in words), after the
    timing; a model run as it is is not explained (read it first).
    progress: draw a progress bar on standard error (the point being timed, points done, time left);
    None: only when standard error is a terminal (see :mod:`batchcore.present.progress`); when it is
    not, one line per backend says that its points started and finished.
    executor: where the cells run: None (here, one after another), any ``concurrent.futures.Executor``
    (outputs in parallel, timed cells one at a time), or ``bc.ray_executor(...)`` (Ray tasks on a cluster's
    nodes of one machine kind, each timed cell with its node's cores to itself; docs/distributed.md).
    Each point then records the nodes it ran on (``point["node"]``, their identities in ``env["nodes"]``)
    and what its cells reserved (``point["placement"]``); points lost with their node and no node of the
    same kind left are in ``SweepResult.not_measured``, with the reason.
    timing: False measures the bits only (every timing and memory field None; cells pack tighter).
    """
    sizes = check_batch_sizes(batch_sizes)
    if backends is None:
        candidates = default_backends(device)
        model = resolve_model(model, candidates, data, required=False)
        chosen = [b for b in candidates if b.runs(model) and b.default_for(model)]  # and those it cannot run
    else:
        chosen = check_backends(backends)
        model = resolve_model(model, chosen, data)
    timer = as_timer(timer)
    timer.policy()  # checks the settings before anything runs
    checks.flag(cold, "cold")
    checks.flag(ceilings, "ceilings")
    checks.flag(timing, "timing")
    cell_executor = as_cell_executor(executor)
    rounds = checks.positive_int(rounds, "rounds", maximum=1000)
    work: ModelWork | ModuleWork
    if isinstance(model, OpaqueModel):
        refuse_model_options(model, rows, cold)
        work = ModuleWork(model, data, labels, sizes)
    else:
        work = ModelWork(model, resolve_data(model, data, rows, seed, sizes), labels, chosen, cold,
                         ceilings and timing, ceiling)
    env = info()
    env["probes"] = work.env_probes
    log = files.PointLog(out, work.config, env) if out is not None else None
    points = list(log.done) if log else []
    done = {(p["backend"], p["batch_size"]) for p in points}
    not_measured: list[dict[str, Any]] = []
    if cell_executor is None:
        points += run_locally(work, chosen, sizes, done, timer, rounds, log, progress, timing)
    else:
        with Steps("sweep", None, progress) as steps:
            found, not_measured = Driver(work, chosen, sizes, done, timer, rounds, timing, log, cell_executor, steps).run()
        env["executor"] = cell_executor.name
        env["nodes"] = cell_executor.identities()
        points += sorted(found, key=lambda p: ([b.label for b in chosen].index(p["backend"]), sizes.index(p["batch_size"])))
        if not_measured:
            warnings.warn(f"{len(not_measured)} point(s) not measured: " + "; ".join(
                f"{m['backend']} at B={m['batch_size']}: {m['reason']}" for m in not_measured), stacklevel=2)
    if checks.flag(explain, "explain"):
        unexplained = [p for p in points if "explain" not in p]  # a resumed log keeps what it explained
        explain_points(unexplained, chosen, model)
        if log:
            for p in unexplained:
                log.write_explain(p)
    ran = work.data if isinstance(work, ModelWork) else data
    return SweepResult(points, env, work.config, source=(model, ran, chosen), not_measured=not_measured)


def run_locally(work: ModelWork | ModuleWork, backends: list[Backend], sizes: list[int], done: set[tuple[str, int]],
                timer: Timer, rounds: int, log: files.PointLog | None, progress: bool | None,
                timing: bool = True) -> list[dict[str, Any]]:
    """The points not yet ``done``: every cell run in this process, in plan order; each point recorded
    (and appended to ``log``) as soon as its last round is measured (``timing=False``: as soon as its
    outputs are in)."""
    round_timer = timer.per_round(rounds)
    parts: dict[tuple[str, int], list[TimedBatch]] = {}
    points = []
    # Where no bar is drawn because standard error is not a terminal (a log, a pipe), a long run still
    # says, a line per backend, that it started and finished; progress=False is silent.
    quiet = progress is None and not enabled(None)
    with Steps("sweep", None, progress) as steps:
        _say(quiet, f"sweep: outputs of {len(backends)} backend(s) at {len(sizes)} batch size(s)")
        tasks = output_tasks(backends, sizes, done, work.outputs, steps)
        if not timing:
            for backend, B, y, y_b1 in tasks:
                points.append(work.point(backend, B, y, y_b1, None))
                if log:
                    log.write(points[-1])
            return points
        steps.total(len(tasks) * rounds)
        last_of = {t[0].label: t[1] for t in tasks}  # each backend's last point
        for label in last_of:
            _say(quiet, f"sweep: timing {label}, {sum(t[0].label == label for t in tasks)} points in {rounds} rounds")
        for cell in cells(tasks, rounds, steps):
            key = (cell.backend.label, cell.batch_size)
            measured = work.measure(cell.backend, cell.batch_size, round_timer, cell.last)
            parts.setdefault(key, []).append(measured)
            if not cell.last:
                continue
            measured.timing = Measurement.pooled([m.timing for m in parts.pop(key)], timer)
            p = work.point(cell.backend, cell.batch_size, cell.outputs, cell.outputs_b1, measured)
            points.append(p)
            if log:
                log.write(p)
            if last_of[key[0]] == key[1]:
                _say(quiet, f"sweep: {key[0]} finished")
    return points


def _say(quiet: bool, line: str) -> None:
    """One line on standard error where no progress bar is drawn (a log, a pipe): a long run says it is alive."""
    if quiet:
        print(line, file=sys.stderr, flush=True)
