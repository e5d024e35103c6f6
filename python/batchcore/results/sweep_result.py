"""What a sweep produces: the record of one measured point (``make_point``, with the fields in
``POINT_FIELDS``) and :class:`SweepResult`, the points with their environment, the decisions read from
them, and their files (JSON, JSON lines, CSV; the formats are in :mod:`batchcore.files`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import checks, files
from ..errors import ArgumentError, MissingDependencyError
from ..measure.probes import Probe
from ..model.graph import AnyModel
from ..model.opaque import FLOAT_FORMATS, Outputs, predictions_note, predictions_of
from ..present.text import Classes, format_table
from . import decisions, numerics

if TYPE_CHECKING:
    import pandas

    from ..backends import Backend, TimedBatch
    from ..frontends.torch.module import Output

# The fields every point carries (names fixed; later versions add more).
POINT_FIELDS = (
    "backend", "device", "precision", "order", "batch_size",
    "time_ms", "time_ms_ci_low", "time_ms_ci_high", "ci_rel_halfwidth", "target_met", "noisy",
    "time_ms_q1", "time_ms_q3", "time_ms_p90", "time_ms_p99", "time_ms_mean", "time_ms_min",
    "samples", "discarded", "samples_per_s", "gflops", "intensity", "peak_frac", "roofline_frac",
    "peak_bytes", "predicted_bytes", "memory_method", "clock",
    "bitwise_equal_frac", "max_ulp_vs_b1", "nan_mismatch_vs_b1", "argmax_changed", "accuracy",
    "max_ulp_vs_exact", "max_rel_err_vs_exact", "nonfinite_outputs", "fingerprint",
)


@dataclass
class SweepResult:
    """The measured points (``points``: list of dicts with POINT_FIELDS), the environment they were
    measured in (``env``) and what was swept (``config``)."""

    points: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # What the sweep ran (model, data, backends), for :meth:`trace`; never written to a file.
    source: tuple[Any, Any, list[Any]] | None = field(default=None, repr=False, compare=False)
    # Points a sweep through an executor could not measure (their node lost, none of its kind left):
    # {"backend", "batch_size", "reason"} each. A rerun with the same out= measures them.
    not_measured: list[dict[str, Any]] = field(default_factory=list, compare=False)

    def classes(self) -> Classes:
        """Per backend, the batch sizes grouped by identical output bits (in order of first size)."""
        out = Classes()
        for label in dict.fromkeys(p["backend"] for p in self.points):
            fps = {p["batch_size"]: p["fingerprint"] for p in self.points if p["backend"] == label}
            out[label] = numerics.invariance_classes(dict(sorted(fps.items())))
        return out

    def best_batch(self, latency_ms: float, metric: str = "p99", backend: str | None = None) -> decisions.BestBatch:
        """The B with the highest throughput whose ``metric`` (median, mean, p90, p99) latency is within
        ``latency_ms``, and how sure that is (see :class:`batchcore.results.decisions.BestBatch`)."""
        return decisions.best_batch(self.points, latency_ms, metric, backend)

    def knee(self, gain: float = 0.05, backend: str | None = None) -> decisions.Knee:
        """Where going to the next batch size stops buying ``gain`` throughput (:class:`~batchcore.results.decisions.Knee`)."""
        return decisions.knee(self.points, gain, backend)

    def why(self) -> str:
        """Why the bits differ: per backend, its batch sizes grouped by the summation tree of the first
        linear layer (a sweep run with ``explain=True``; otherwise says so)."""
        from ..explain.points import why

        said = why(self.points)
        return said or "no point was explained: run the sweep with explain=True"

    def trace(self, backend: Any, batch_size: int, row: int = 0) -> Any:
        """Where the bits of row ``row`` part between running alone and in a batch of ``batch_size`` on one of
        the sweep's backends (its label, e.g. ``"torch[cpu]"``, or the backend): :func:`batchcore.trace` on
        the model and data this sweep ran. A result read from a file holds neither: ArgumentError."""
        from ..explain.trace import trace_backend

        if self.source is None:
            raise ArgumentError("this result holds no model (it was read from a file): call bc.trace(model, data, "
                                "batch_size, backend) with the model and data it measured")
        model, data, backends = self.source
        label = backend if isinstance(backend, str) else getattr(backend, "label", backend)
        chosen = next((b for b in backends if b.label == label), None)
        if chosen is None:
            raise ArgumentError(f"{label!r} is not a backend of this sweep; its backends: "
                                f"{', '.join(b.label for b in backends)}")
        return trace_backend(model, data, batch_size, chosen, row)

    def table(self) -> str:
        """A plain-text table, one row per (backend, batch size); ``class`` numbers the invariance
        class of the point within its backend (0 is the class of the smallest batch size)."""
        return format_table([{**p, "class_id": c} for p, c in zip(self.points, self.class_ids(), strict=False)])

    def class_ids(self) -> list[int]:
        """Each point's invariance class within its backend (0: the class of the smallest batch size)."""
        classes = self.classes()
        return [next(i for i, g in enumerate(classes[p["backend"]]) if p["batch_size"] in g) for p in self.points]

    def to_pandas(self) -> pandas.DataFrame:
        """One row per point: the :data:`POINT_FIELDS` as columns (times in ms, memory in bytes; docs/metrics.md
        says what each holds), then ``class_id``; None where a value is unknown. Needs pandas
        (``pip install 'batchcore[report]'``), else MissingDependencyError."""
        try:
            import pandas
        except ImportError:
            raise MissingDependencyError("to_pandas() needs pandas: pip install 'batchcore[report]'") from None
        frame = pandas.DataFrame([{k: p.get(k) for k in POINT_FIELDS} for p in self.points], columns=list(POINT_FIELDS))
        frame["class_id"] = self.class_ids()
        return frame

    def plot(self, path: str | PathLike[str], budget_bytes: int | None = None) -> None:
        """Every panel of the sweep in one image (latency and throughput with 95 % CI bands, bitwise
        agreement with B=1, prediction flips, invariance classes as a strip, peak memory with
        ``budget_bytes`` as a line), written atomically as .png, .svg or .pdf (by the path's suffix).
        Needs matplotlib (``pip install 'batchcore[report]'``), else MissingDependencyError."""
        from ..present import plots

        plots.image_format(path)  # a bad path is refused before anything is drawn
        if budget_bytes is not None:
            budget_bytes = checks.positive_int(budget_bytes, "budget_bytes")
        title = f"{self.config.get('model') or 'a model'} on {plots.machine(self.env)}"
        plots.save(plots.overview(self.points, self.classes(), title, budget_bytes), path)

    def to_json(self, path: str | PathLike[str]) -> None:
        """Write ``{"env", "config", "points"}`` atomically (a temporary file renamed into place);
        non-finite numbers are written as null. ResultFileError when the path cannot be written."""
        doc = files.json_safe({"env": self.env, "config": self.config, "points": self.points})
        files.atomic_write(path, json.dumps(doc, indent=1, allow_nan=False))

    @classmethod
    def from_json(cls, path: str | PathLike[str]) -> SweepResult:
        """Read a file written by :meth:`to_json` or a JSON-lines file written by ``sweep(out=...)``;
        ResultFileError names what is wrong with any other file."""
        points, env, config = files.load(path)
        return cls(points, env, config)

    def to_csv(self, path: str | PathLike[str]) -> None:
        """One row per point, the POINT_FIELDS as columns; written atomically."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=POINT_FIELDS, extrasaction="ignore")
        w.writeheader()
        for p in self.points:
            w.writerow({k: ("" if p.get(k) is None else p.get(k)) for k in POINT_FIELDS})
        files.atomic_write(path, buf.getvalue())


def make_point(backend: Backend, model: AnyModel, B: int, y: np.ndarray, y_b1: np.ndarray, y_exact: np.ndarray,
               labels: np.ndarray | None, measured: TimedBatch | None, ceiling: Probe | None) -> dict[str, Any]:
    """The record of one (backend, batch size): ``y`` the outputs of the data run in batches of ``B``,
    ``y_b1`` at B=1, ``y_exact`` with every linear layer correctly rounded; the time and memory of one
    batch of ``B`` rows (``measured``; None in a bits-only sweep: those fields are None), held against
    ``ceiling`` (the backend's probe, or None)."""
    median = measured.timing.median_ms if measured is not None else None
    gflops = model.flops_per_row * B / (median / 1e3) / 1e9 if median else None
    traffic = model.min_traffic_bytes(B)
    intensity = model.flops_per_row * B / traffic
    return files.json_safe({
        **_measured_fields(backend, B, measured),
        "gflops": gflops,
        "intensity": intensity,
        "peak_frac": gflops / ceiling.peak_gflops if ceiling and gflops else None,
        "roofline_frac": gflops / ceiling.roofline_gflops(intensity, traffic) if ceiling and gflops else None,
        "bitwise_equal_frac": numerics.bitwise_equal_frac(y, y_b1),
        "max_ulp_vs_b1": numerics.max_ulp(y, y_b1),
        "nan_mismatch_vs_b1": int(numerics.nan_mismatch(y, y_b1).sum()),
        "argmax_changed": numerics.argmax_changed(y, y_b1),
        "accuracy": numerics.accuracy(y, labels) if labels is not None else None,
        "max_ulp_vs_exact": numerics.max_ulp(y, y_exact),
        "max_rel_err_vs_exact": float(np.max(numerics.relative_error(y, y_exact))),
        "nonfinite_outputs": int(np.count_nonzero(~np.isfinite(y))),
        "fingerprint": numerics.fingerprint(y),
    })


def _measured_fields(backend: Backend, B: int, measured: TimedBatch | None) -> dict[str, Any]:
    """A point's fields that come from its timing and memory (every point has them, whatever it runs;
    None where the sweep measured bits only)."""
    s = backend.settings()
    named = {
        "backend": backend.label,
        "device": s["device"],
        "precision": s["precision"],
        "order": s.get("policy") if s.get("policy") == "library-like" else s["order"],
        "batch_size": B,
    }
    if measured is None:
        return {**named, **dict.fromkeys(TIMED_FIELDS), "settings": s}
    t, med = measured.timing, measured.timing.median_ms
    return {
        **named,
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
        "peak_bytes": measured.peak_bytes,
        "predicted_bytes": measured.predicted_bytes,
        "memory_method": measured.memory,
        "clock": measured.clock,
        "first_call_ms": measured.first_call_ms,
        "timing": {"samples_ms": t.samples_ms, "calls_per_sample": t.calls_per_sample, "timed_out": t.timed_out,
                   "warmup_s": t.warmup_s, "sampling_s": t.sampling_s, "clock_overhead_ns": t.clock_overhead_ns,
                   "rounds": max(1, len(t.round_medians_ms)), "round_medians_ms": t.round_medians_ms},
        "timer": t.timer,
        "settings": s,
    }


# The fields of a point that only its timing and memory fill (None in a bits-only sweep).
TIMED_FIELDS = (
    "time_ms", "time_ms_ci_low", "time_ms_ci_high", "ci_rel_halfwidth", "target_met", "noisy", "time_ms_q1", "time_ms_q3",
    "time_ms_p90", "time_ms_p99", "time_ms_mean", "time_ms_min", "samples", "discarded", "samples_per_s", "peak_bytes",
    "predicted_bytes", "memory_method", "clock", "first_call_ms", "timing", "timer",
)


def make_module_point(backend: Backend, B: int, y: Outputs, y_b1: Outputs, labels: np.ndarray | None,
                      measured: TimedBatch | None) -> dict[str, Any]:
    """The record of one (torch backend, batch size) for a user's module: ``y`` its outputs over the data
    in batches of ``B``, ``y_b1`` at B=1. Every output is compared in its own format (ULPs of float16 or
    bfloat16 for those); what is not a tensor (a cache) is named in ``outputs_left_out``. argmax and
    accuracy read the first floating output of shape (rows, ..., classes), over its last dimension
    (:func:`~batchcore.model.opaque.predictions_of`; ``argmax_changed`` counts predictions, and
    ``argmax_of`` says which and how many per row). The FLOP count and the exactly rounded reference of a
    module batchcore does not read are unknown: those fields are None."""
    floating = [(a.values, b.values, a.fmt) for a, b in zip(y, y_b1, strict=False) if a.fmt in FLOAT_FORMATS]
    equal = [numerics.bitwise_equal(a.values, b.values) if a.fmt in FLOAT_FORMATS else np.asarray(a.values == b.values)
             for a, b in zip(y, y_b1, strict=False)]
    predicted, predicted_b1 = predictions_of(y), predictions_of(y_b1)
    precision = backend.settings()["precision"]
    return files.json_safe({
        **_measured_fields(backend, B, measured),
        "precision": "+".join(dict.fromkeys(o.fmt for o in y)) if precision == "fp32" else precision,
        "gflops": None, "intensity": None, "peak_frac": None, "roofline_frac": None,
        "bitwise_equal_frac": float(np.concatenate([e.ravel() for e in equal]).mean()),
        "max_ulp_vs_b1": max([numerics.max_ulp(a, b, fmt) for a, b, fmt in floating], default=0),
        "nan_mismatch_vs_b1": int(sum(numerics.nan_mismatch(a, b).sum() for a, b, _ in floating)),
        "argmax_changed": (numerics.argmax_changed(predicted.values, predicted_b1.values)
                           if predicted is not None and predicted_b1 is not None else None),
        "accuracy": (numerics.accuracy(predicted.values, labels)
                     if labels is not None and predicted is not None and predicted_b1 is not None else None),
        "argmax_of": predictions_note(predicted) if predicted is not None else None,
        "max_ulp_vs_exact": None,
        "max_rel_err_vs_exact": None,
        "nonfinite_outputs": int(sum(np.count_nonzero(~np.isfinite(a)) for a, _, _ in floating)),
        "fingerprint": fingerprint_outputs(y),
        "outputs": [{"name": o.name, "format": o.fmt, "shape": list(o.values.shape)} for o in y],
        "outputs_left_out": list(getattr(y, "left_out", ())),
    })


def fingerprint_outputs(outputs: list[Output]) -> str:
    """One fingerprint of several outputs (names, formats and every bit): equal fingerprints, equal outputs."""
    h = hashlib.sha256()
    for o in outputs:
        h.update(f"{o.name}:{o.fmt}:{numerics.fingerprint(o.values)}".encode())
    return h.hexdigest()[:16]
