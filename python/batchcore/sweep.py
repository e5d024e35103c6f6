"""``sweep()``: run one model through several backends, batch size by batch size, and compare.

For every backend and batch size B the data are processed in consecutive batches of B rows (the last
one shorter), exactly as a user's evaluation loop does, and the outputs are compared bit by bit with
the same backend at B=1 and with the ``exact`` order (correctly rounded linear layers). One batch of
exactly B rows is also timed. Each measured point is appended to a JSON-lines file as soon as it exists
(``out=``), so an interrupted sweep loses nothing and a rerun resumes where it stopped.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from os import PathLike
from typing import Any

import numpy as np

from . import checks, devices, resultfile
from .backends import Backend, NativeBackend, NumpyBackend, TimedBatch, check_input, native
from .backends import cupy as cupy_backend
from .backends import numpy as numpy_backend
from .backends import torch as torch_backend
from .backends.torch_backend import TorchBackend
from .errors import ArgumentError, DeviceUnavailableError, ShapeError, UnsupportedLayerError
from .graph_models import GraphModel
from .info import info
from .models import Model
from .module_sweep import array_digest, check_module_backends, output_tasks, sweep_module, timing_rounds
from .probes import Probe
from .probes import probe as probe_device
from .progress import Steps
from .results import SweepResult, make_point
from .timing import Measurement, Timer, as_timer
from .torch_models import from_torch
from .user_modules import UserModule

DEFAULT_BATCH_SIZES = (1, 2, 3, 8, 64, 256, 1024)


def check_batch_sizes(batch_sizes: Any) -> list[int]:
    if isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__iter__"):
        raise ShapeError(f"batch_sizes must be a list of positive integers, got {batch_sizes!r}")
    sizes = [checks.positive_int(b, "every batch size", ShapeError) for b in batch_sizes]
    if not sizes:
        raise ShapeError("batch_sizes is empty")
    return list(dict.fromkeys(sizes))


def _sample_shape(data: Any) -> tuple[int, ...] | None:
    """One sample's shape in ``data`` (an array or tensor whose first dimension is the batch), if it has one."""
    shape = getattr(data, "shape", None)
    return tuple(int(d) for d in shape[1:]) if shape is not None and len(shape) >= 2 else None


def resolve_model(model: Any, backends: list[Backend], data: Any) -> Model | GraphModel | UserModule:
    """A Model or GraphModel as it is; a torch module read by ``from_torch`` (with the data's sample shape)
    when it can be and a backend other than torch needs it (every backend then runs it), else the module
    itself, which only torch backends run (the others are refused, saying why)."""
    if isinstance(model, (Model, GraphModel)):
        return model
    if not callable(model):
        raise ArgumentError("sweep() takes a batchcore Model (bc.mlp(...), bc.from_torch(module)), a torch.nn.Module "
                            f"or a callable, got {model!r}")
    if all(isinstance(b, TorchBackend) for b in backends):
        return UserModule(model)
    dtype = "int64" if str(getattr(data, "dtype", "")).removeprefix("torch.") == "int64" else "float32"
    try:
        return from_torch(model, input_shape=_sample_shape(data), input_dtype=dtype)
    except UnsupportedLayerError as e:
        user = UserModule(model)
        check_module_backends(user, backends, f"bc.from_torch does not read it ({e})")
        return user


def check_backends(backends: Any) -> list[Backend]:
    if isinstance(backends, Backend):
        raise ArgumentError("backends must be a list of backends, e.g. [bc.native()]")
    if isinstance(backends, (str, bytes)) or not hasattr(backends, "__iter__"):
        raise ArgumentError(f"backends must be a list of backends such as bc.native(), got {backends!r}")
    found = list(backends)
    if not found:
        raise ShapeError("backends is empty")
    for b in found:
        if not isinstance(b, Backend):
            raise ArgumentError(f"backends must hold batchcore backends (bc.native(), bc.torch(), ...), got {b!r}")
    labels = [b.label for b in found]
    if len(set(labels)) != len(labels):
        raise ArgumentError(f"two backends share a label ({labels}); their points could not be told apart")
    return found


def resolve_data(model: Model | GraphModel, data: Any, rows: Any, seed: Any, sizes: list[int]) -> np.ndarray:
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


def _rows(y: np.ndarray) -> np.ndarray:
    """Outputs as rows (a graph's samples may be N-D): what the bitwise and ULP comparisons take."""
    return y.reshape(len(y), -1)


def _ceiling(backend: Backend, refresh: bool = False) -> Probe:
    """The probe a backend's points are held against: its GPU, or the CPU at its own thread count."""
    s = backend.settings()
    if s["device"] != "cpu":
        return probe_device(s["device"], refresh=refresh)
    return probe_device("cpu", threads=s.get("threads"), refresh=refresh)


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
          ceilings: bool = True, rounds: int = 6, progress: bool | None = None) -> SweepResult:
    """Measure what the batch size changes, per backend: bits, speed, memory.

    model: a :class:`Model` (``bc.mlp`` or ``bc.from_torch``), or a torch module or callable: read by
    ``from_torch`` when it can be, else run as it is by torch backends only (any input of any shape,
    outputs tensors, tuples or dicts, float32/float16/bfloat16; see :mod:`batchcore.module_sweep`).
    batch_sizes: batch sizes to measure (B=1 is always computed as the reference).
    backends: list of backends (default: :func:`default_backends` on ``device``).
    data: (rows, inputs) float32 array with at least max(batch_sizes) rows; default ``rows``
    standard-normal rows drawn with ``seed`` (default: max(512, the largest batch size)). For a module
    run as it is: required, a numpy array or torch tensor (or a tuple of them) whose first dimension is
    the batch, in the module's own dtype (nothing is converted).
    labels: optional integer class per row, for accuracy.
    timer: the measurement policy of every point (default ``bc.Timer()``: 1 % target, 0.5 s minimum);
    times are in milliseconds.
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
    progress: draw a progress bar on standard error (the point being timed, points done, time left);
    None: only when standard error is a terminal (see :mod:`batchcore.progress`).
    """
    sizes = check_batch_sizes(batch_sizes)
    defaulted = backends is None
    backends = default_backends(device) if backends is None else check_backends(backends)
    model = resolve_model(model, backends, data)
    if defaulted and isinstance(model, GraphModel):  # the array backends run chain models only
        backends = [b for b in backends if not isinstance(b, NumpyBackend)]
    timer = as_timer(timer)
    timer.policy()  # checks the settings before anything runs
    checks.flag(cold, "cold")
    checks.flag(ceilings, "ceilings")
    rounds = checks.positive_int(rounds, "rounds", maximum=1000)
    if isinstance(model, UserModule):
        if rows is not None or cold:
            raise ArgumentError(f"{'rows=' if rows is not None else 'cold=True'} applies to batchcore Models; a "
                                "module's sweep runs the data= it is given, warm")
        return sweep_module(model, sizes, backends, data, labels, timer, rounds, out, info(), progress)
    data = resolve_data(model, data, rows, seed, sizes)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
            raise ShapeError(f"labels must be integers of shape ({len(data)},), got {labels.dtype} {labels.shape}")
    checks.require_allocatable(3 * 4 * max(sizes) * model.widest, f"a batch of {max(sizes)} rows")

    config = {"model": model.describe(), "model_digest": model.digest(), "rows": len(data),
              "data_digest": array_digest(data), "labels_digest": array_digest(labels)}
    env = info()
    probes: dict[str, Probe] = {}
    env["probes"] = {}
    for b in backends if ceilings else []:
        try:
            probes[b.label] = _ceiling(b)
            env["probes"][b.label] = probes[b.label].to_dict()
        except DeviceUnavailableError as e:  # e.g. torch on a GPU in a build without batchcore's CUDA core
            env["probes"][b.label] = {"unavailable": str(e)}
    log = resultfile.PointLog(out, config, env) if out is not None else None
    points = list(log.done) if log else []
    done = {(p["backend"], p["batch_size"]) for p in points}

    # The bits first (every backend, every batch size), then the timing in interleaved rounds: a slow
    # spell of the machine (seen here to last seconds and slow everything by up to 1.9x) then hits one
    # round of many points, widening their intervals, instead of all the samples of a few points.
    exact_cache: dict[str, np.ndarray] = {}
    for backend in backends:
        if backend.precision not in exact_cache and any((backend.label, B) not in done for B in sizes):
            exact = NativeBackend(order="exact", precision=backend.precision)
            exact_cache[backend.precision] = _rows(exact.run_batched(model, data, len(data)))
    round_timer = timer.per_round(rounds)
    parts: dict[tuple[str, int], list[TimedBatch]] = {}
    with Steps("sweep", None, progress) as steps:
        tasks = output_tasks(backends, sizes, done, lambda b, B: _rows(b.run_batched(model, data, B)), steps)
        steps.total(len(tasks) * rounds)
        for r, backend, B, y, y_b1 in timing_rounds(tasks, rounds, steps):
            last = r == rounds - 1
            measured = backend.measure(model, np.ascontiguousarray(data[:B]), round_timer, cold=cold, memory=last)
            parts.setdefault((backend.label, B), []).append(measured)
            if not last:
                continue
            runs = parts.pop((backend.label, B))
            measured.timing = Measurement.pooled([m.timing for m in runs], timer)
            p = make_point(backend, model, B, y, y_b1, exact_cache[backend.precision], labels, measured,
                           probes.get(backend.label))
            if (p["peak_frac"] or 0) > 1 and probes[backend.label].source != "measured":
                # Over the peak: the cached probe is stale (another moment, a throttled run). Measure it
                # again once, and hold this backend's points against the fresh one.
                probes[backend.label] = _ceiling(backend, refresh=True)
                env["probes"][backend.label] = probes[backend.label].to_dict()
                p = make_point(backend, model, B, y, y_b1, exact_cache[backend.precision], labels, measured,
                               probes[backend.label])
            if (p["peak_frac"] or 0) > 1:
                warnings.warn(f"{backend.label} at B={B} ran at {100 * p['peak_frac']:.0f} % of a freshly measured "
                              "peak: the machine's speed changed during the sweep", stacklevel=2)
            points.append(p)
            if log:
                log.write(p)
    return SweepResult(points, env, config)
