"""``sweep()``: run one model through several backends, batch size by batch size, and compare.

For every backend and batch size B the data are processed in consecutive batches of B rows (the last
one shorter), exactly as a user's evaluation loop does, and the outputs are compared bit by bit with
the same backend at B=1 and with the ``exact`` order (correctly rounded linear layers). One batch of
exactly B rows is also timed. Each measured point is appended to a JSON-lines file as soon as it exists
(``out=``), so an interrupted sweep loses nothing and a rerun resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import decisions, devices, numerics
from .backends import Backend, Measured, NativeBackend, check_input, cupy as cupy_backend, native
from .backends import numpy as numpy_backend, torch as torch_backend
from .errors import ArgumentError, BatchcoreError, DeviceUnavailableError, ShapeError
from .info import info
from .models import Model
from .probes import Probe, probe as probe_device
from .report import Classes, format_table
from .timing import Timer

# The fields every point carries (names fixed; later versions add more).
POINT_FIELDS = (
    "backend", "device", "precision", "order", "batch_size",
    "time_ms", "time_ms_ci_low", "time_ms_ci_high", "ci_rel_halfwidth", "target_met", "noisy",
    "time_ms_q1", "time_ms_q3", "time_ms_p90", "time_ms_p99", "time_ms_mean", "time_ms_min",
    "samples", "discarded", "samples_per_s", "gflops", "intensity", "peak_frac", "roofline_frac",
    "peak_bytes", "predicted_bytes", "memory_method", "clock",
    "bitwise_equal_frac", "max_ulp_vs_b1", "nan_mismatch_vs_b1", "argmax_changed", "accuracy",
    "max_ulp_vs_exact", "max_rel_err_vs_exact", "fingerprint",
)
DEFAULT_BATCH_SIZES = (1, 2, 3, 8, 64, 256, 1024)


@dataclass
class SweepResult:
    """The measured points (``points``: list of dicts with POINT_FIELDS), the environment they were
    measured in (``env``) and what was swept (``config``)."""

    points: list[dict]
    env: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def classes(self) -> Classes:
        """Per backend, the batch sizes grouped by identical output bits (in order of first size)."""
        out = Classes()
        for label in dict.fromkeys(p["backend"] for p in self.points):
            fps = {p["batch_size"]: p["fingerprint"] for p in self.points if p["backend"] == label}
            out[label] = numerics.invariance_classes(dict(sorted(fps.items())))
        return out

    def best_batch(self, latency_ms: float, metric: str = "p99", backend: str | None = None):
        """The B with the highest throughput whose ``metric`` (median, mean, p90, p99) latency is within
        ``latency_ms``, and how sure that is (see :class:`batchcore.decisions.BestBatch`)."""
        return decisions.best_batch(self.points, latency_ms, metric, backend)

    def knee(self, gain: float = 0.05, backend: str | None = None):
        """Where going to the next batch size stops buying ``gain`` throughput (:class:`~batchcore.decisions.Knee`)."""
        return decisions.knee(self.points, gain, backend)

    def table(self) -> str:
        """A plain-text table, one row per (backend, batch size); ``class`` numbers the invariance
        class of the point within its backend (0 is the class of the smallest batch size)."""
        classes = self.classes()
        rows = []
        for p in self.points:
            groups = classes[p["backend"]]
            rows.append({**p, "class_id": next(i for i, g in enumerate(groups) if p["batch_size"] in g)})
        return format_table(rows)

    def to_json(self, path) -> None:
        """Write ``{"env", "config", "points"}`` atomically (a temporary file renamed into place)."""
        _atomic_write(path, json.dumps({"env": self.env, "config": self.config, "points": self.points},
                                       indent=1, allow_nan=False))

    @classmethod
    def from_json(cls, path) -> "SweepResult":
        """Read a file written by :meth:`to_json` or a JSON-lines file written by ``sweep(out=...)``."""
        with open(path) as f:
            text = f.read()
        try:
            d = json.loads(text)
        except json.JSONDecodeError:
            d = None  # not one JSON document: a JSON-lines log
        if isinstance(d, dict) and "points" in d:
            return cls(d["points"], d.get("env", {}), d.get("config", {}))
        header, points = _read_jsonl(path, repair=False)
        return cls(points, header.get("env", {}), header.get("config", {}))

    def to_csv(self, path) -> None:
        """One row per point, the POINT_FIELDS as columns; written atomically."""
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=POINT_FIELDS, extrasaction="ignore")
        w.writeheader()
        for p in self.points:
            w.writerow({k: ("" if p.get(k) is None else p.get(k)) for k in POINT_FIELDS})
        _atomic_write(path, buf.getvalue())


def _atomic_write(path, text: str) -> None:
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".batchcore-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_jsonl(path, repair: bool):
    """Header and points of a JSON-lines result file. A torn last line (an interrupted write) is
    dropped, and with ``repair`` cut from the file so that appends continue cleanly."""
    header, points, good_end = {}, [], 0
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # no newline: the last write was interrupted
        try:
            rec = json.loads(data[pos:nl])
        except json.JSONDecodeError:
            break
        if rec.get("type") == "header":
            header = rec
        elif rec.get("type") == "point":
            points.append({k: v for k, v in rec.items() if k != "type"})
        pos = good_end = nl + 1
    if good_end < len(data):
        if good_end < data.rfind(b"\n") + 1:
            raise BatchcoreError(f"{path}: line after byte {good_end} is not valid JSON (not a torn last line)")
        if repair:
            with open(path, "r+b") as f:
                f.truncate(good_end)
    return header, points


class _PointLog:
    """Append-only JSON-lines log of a sweep: one header line, then one line per point, each flushed and
    synced as it is written."""

    def __init__(self, path, config: dict, env: dict):
        self.path = os.fspath(path)
        self.done: list[dict] = []
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            header, self.done = _read_jsonl(self.path, repair=True)
            if header.get("config") != config:
                raise BatchcoreError(f"{self.path} holds a different sweep (model, data or labels differ); "
                                     "pass another out= path or remove the file")
        else:
            self._append({"type": "header", "config": config, "env": env})

    def _append(self, rec: dict) -> None:
        line = json.dumps(rec, allow_nan=False) + "\n"
        with open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def write(self, point: dict) -> None:
        self._append({"type": "point", **point})


def _digest(a) -> str | None:
    return None if a is None else hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _check_batch_sizes(batch_sizes) -> list[int]:
    sizes = list(dict.fromkeys(batch_sizes))
    if not sizes:
        raise ShapeError("batch_sizes is empty")
    for b in sizes:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ShapeError(f"batch sizes must be positive integers, got {b!r}")
    return [int(b) for b in sizes]


def _point(backend: Backend, model: Model, B: int, y, y_b1, y_exact, labels, measured: Measured,
           ceiling: Probe | None) -> dict:
    t = measured.timing
    med = t.median_ms
    s = backend.settings()
    gflops = model.flops_per_row * B / (med / 1e3) / 1e9 if med else None
    traffic = model.min_traffic_bytes(B)
    intensity = model.flops_per_row * B / traffic
    return {
        "backend": backend.label,
        "device": s["device"],
        "precision": s["precision"],
        "order": s.get("policy") if s.get("policy") == "library-like" else s["order"],
        "batch_size": B,
        "time_ms": med,
        "time_ms_ci_low": t.ci_low_ms if math.isfinite(t.ci_low_ms) else None,
        "time_ms_ci_high": t.ci_high_ms if math.isfinite(t.ci_high_ms) else None,
        "ci_rel_halfwidth": t.ci_rel_halfwidth if math.isfinite(t.ci_rel_halfwidth) else None,
        "target_met": t.target_met,
        "noisy": t.noisy,
        "time_ms_q1": t.q1_ms,
        "time_ms_q3": t.q3_ms,
        "time_ms_p90": t.p90_ms,
        "time_ms_p99": t.p99_ms,
        "time_ms_mean": t.mean_ms,
        "time_ms_min": t.min_ms,
        "samples": t.samples,
        "discarded": t.discarded,
        "samples_per_s": B / (med / 1e3) if med else None,
        "gflops": gflops,
        "intensity": intensity,
        "peak_frac": gflops / ceiling.peak_gflops if ceiling and gflops else None,
        "roofline_frac": gflops / ceiling.roofline_gflops(intensity, traffic) if ceiling and gflops else None,
        "peak_bytes": measured.peak_bytes,
        "predicted_bytes": measured.predicted_bytes,
        "memory_method": measured.memory,
        "clock": measured.clock,
        "bitwise_equal_frac": numerics.bitwise_equal_frac(y, y_b1),
        "max_ulp_vs_b1": numerics.max_ulp(y, y_b1),
        "nan_mismatch_vs_b1": int(numerics.nan_mismatch(y, y_b1).sum()),
        "argmax_changed": numerics.argmax_changed(y, y_b1),
        "accuracy": numerics.accuracy(y, labels) if labels is not None else None,
        "max_ulp_vs_exact": numerics.max_ulp(y, y_exact),
        "max_rel_err_vs_exact": float(np.max(numerics.relative_error(y, y_exact))),
        "fingerprint": numerics.fingerprint(y),
        "timing": {"samples_ms": t.samples_ms, "calls_per_sample": t.calls_per_sample, "timed_out": t.timed_out,
                   "warmup_s": t.warmup_s, "sampling_s": t.sampling_s, "clock_overhead_ns": t.clock_overhead_ns},
        "timer": t.timer,
        "settings": s,
    }


def _ceiling(backend: Backend) -> Probe:
    """The probe a backend's points are held against: its GPU, or the CPU at its own thread count."""
    s = backend.settings()
    if s["device"] != "cpu":
        return probe_device(s["device"])
    return probe_device("cpu", threads=s.get("threads"))


def default_backends(device="auto") -> list[Backend]:
    """native seq, numpy and torch (when installed) on the CPU; on a GPU native seq, torch and cupy
    (those installed) on that GPU."""
    dev = devices.parse(device)
    if dev.kind == "cuda":
        found = [native(device=str(dev))]
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


def sweep(model: Model, batch_sizes=DEFAULT_BATCH_SIZES, backends=None, data=None, labels=None, rows: int = 512,
          timer: Timer | None = None, out=None, seed: int = 0, device="auto", cold: bool = False,
          probe: bool = True) -> SweepResult:
    """Measure what the batch size changes, per backend: bits, speed, memory.

    model: a :class:`Model` (``bc.mlp`` or ``bc.from_torch``).
    batch_sizes: batch sizes to measure (B=1 is always computed as the reference).
    backends: list of backends (default: :func:`default_backends` on ``device``).
    data: (rows, inputs) float32 array; default ``rows`` standard-normal rows drawn with ``seed``.
    labels: optional integer class per row, for accuracy.
    timer: the measurement policy of every point (default ``bc.Timer()``: 1 % target, 0.5 s minimum);
    times are in milliseconds.
    device: where the default backends run ("auto": the GPU when the core sees one).
    cold: flush the caches before every timed pass (GPU backends).
    probe: put every point's GFLOP/s in proportion to the device's measured ceilings (:func:`batchcore.probe`,
    cached per machine): ``peak_frac`` (of the fma peak) and ``roofline_frac`` (of min(peak, bandwidth x
    intensity), intensity in flop per byte of :meth:`Model.min_traffic_bytes`). The probes used are in
    ``env["probes"]``.
    out: path of a JSON-lines file: each point is appended as soon as it is measured; an existing file
    of the same sweep is resumed (its points are kept, not re-measured).
    """
    sizes = _check_batch_sizes(batch_sizes)
    if backends is None:
        backends = default_backends(device)
    if not backends:
        raise ShapeError("backends is empty")
    if timer is None:
        timer = Timer()
    if not isinstance(timer, Timer):
        raise ArgumentError(f"timer must be a batchcore.Timer, got {type(timer).__name__}")
    timer.policy()  # checks the settings before anything runs
    if data is None:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ShapeError(f"rows must be a positive integer, got {rows!r}")
        data = np.random.default_rng(seed).standard_normal((rows, model.input_width), dtype=np.float32)
    data = check_input(model, data)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
            raise ShapeError(f"labels must be integers of shape ({len(data)},), got {labels.dtype} {labels.shape}")

    config = {"model": model.describe(), "model_digest": model.digest(), "rows": len(data),
              "data_digest": _digest(data), "labels_digest": _digest(labels)}
    env = info()
    ceilings, env["probes"] = {}, {}
    for b in backends if probe else []:
        try:
            ceilings[b.label] = _ceiling(b)
            env["probes"][b.label] = ceilings[b.label].to_dict()
        except DeviceUnavailableError as e:  # e.g. torch on a GPU in a build without batchcore's CUDA core
            env["probes"][b.label] = {"unavailable": str(e)}
    log = _PointLog(out, config, env) if out is not None else None
    points = list(log.done) if log else []
    done = {(p["backend"], p["batch_size"]) for p in points}

    exact_cache: dict[str, np.ndarray] = {}
    for backend in backends:
        todo = [B for B in sizes if (backend.label, B) not in done]
        if not todo:
            continue
        if backend.precision not in exact_cache:
            exact = NativeBackend(order="exact", precision=backend.precision)
            exact_cache[backend.precision] = exact.run_batched(model, data, len(data))
        y_exact = exact_cache[backend.precision]
        y_b1 = backend.run_batched(model, data, 1)
        for B in todo:
            y = y_b1 if B == 1 else backend.run_batched(model, data, B)
            x_timed = np.ascontiguousarray(data[np.arange(B) % len(data)])
            measured = backend.measure(model, x_timed, timer, cold=cold)
            p = _point(backend, model, B, y, y_b1, y_exact, labels, measured, ceilings.get(backend.label))
            points.append(p)
            if log:
                log.write(p)
    return SweepResult(points, env, config)
