"""A sweep's results: the record of one point, computed from planted outputs and a planted timing and
checked against figures worked out here by other means, and the result files written and read back."""

import csv
import struct

import numpy as np
import pytest

import batchcore as bc
from batchcore.backends import TimedBatch
from batchcore.results.sweep_result import POINT_FIELDS, SweepResult, make_point


def ulps(a: float, b: float) -> int:
    """ULP distance of two float32 by their bit patterns (negatives reflected), with struct, not numpy."""
    def key(v):
        i = struct.unpack("<i", struct.pack("<f", v))[0]
        return i if i >= 0 else -(i & 0x7FFFFFFF)
    return abs(key(a) - key(b))


@pytest.fixture(scope="module")
def planted():
    model = bc.mlp([6, 4], seed=0)  # flops per row: 2 * 6 * 4 = 48
    rng = np.random.default_rng(0)
    y_b1 = rng.standard_normal((5, 4)).astype(np.float32)
    y_b1[2] = [0.5, 0.4999, -1.0, -2.0]  # a row whose argmax a few ULPs can flip
    y = y_b1.copy()
    y[0, 1] = np.nextafter(y[0, 1], np.float32(np.inf))        # 1 ULP
    y[3, 3] = np.float32(y[3, 3]) + 4 * np.spacing(y[3, 3])      # 4 ULPs
    y[2, 1] = np.float32(0.5001)                                 # flips row 2's argmax
    y_exact = y_b1.copy()
    timing = bc.Timer(min_samples=10, min_time_s=0, warmup_s=0, target=0.5).replay([2_000_000.0])  # 2 ms a call
    return model, y, y_b1, y_exact, TimedBatch(timing, 1000, 1000, "planted clock", "planted memory")


def test_a_point_holds_what_its_outputs_and_timing_say(planted):
    model, y, y_b1, y_exact, timed = planted
    p = make_point(bc.native(threads=1), model, 4, y, y_b1, y_exact, np.array([0, 1, 0, 3, 2]), timed, None)
    assert set(POINT_FIELDS) <= set(p)
    assert p["backend"] == "native[seq]" and p["batch_size"] == 4
    assert p["time_ms"] == pytest.approx(2.0) and p["samples_per_s"] == pytest.approx(4 / 2e-3)
    assert p["gflops"] == pytest.approx(48 * 4 / 2e-3 / 1e9)
    assert p["bitwise_equal_frac"] == pytest.approx(17 / 20)  # three elements differ
    want_ulp = max(ulps(float(a), float(b)) for a, b in zip(y.ravel(), y_b1.ravel(), strict=False))
    assert p["max_ulp_vs_b1"] == want_ulp and want_ulp > 4  # row 2's change is the largest
    assert p["argmax_changed"] == 1 and p["nonfinite_outputs"] == 0
    assert p["accuracy"] == pytest.approx(np.mean(y.argmax(1) == [0, 1, 0, 3, 2]))
    assert p["peak_frac"] is None and p["roofline_frac"] is None  # no ceiling given
    assert p["peak_bytes"] == p["predicted_bytes"] == 1000 and p["clock"] == "planted clock"
    intensity = 48 * 4 / (4 * (6 * 4 + 4 + 4 * (6 + 4)))  # flops / (parameters + input + output bytes)
    assert p["intensity"] == pytest.approx(intensity)


def test_an_overflowing_output_is_counted_and_written_as_null(planted, tmp_path):
    model, y, y_b1, y_exact, timed = planted
    big = y.copy()
    big[1, 0] = np.inf
    p = make_point(bc.native(threads=1), model, 2, big, y_b1, y_exact, None, timed, None)
    assert p["nonfinite_outputs"] == 1 and p["max_rel_err_vs_exact"] is None  # inf error: JSON has no inf
    res = SweepResult([p], {"machine": "test"}, {"model": model.describe()})
    res.to_json(tmp_path / "r.json")
    assert SweepResult.from_json(tmp_path / "r.json").points[0]["max_rel_err_vs_exact"] is None


def test_files_round_trip(planted, tmp_path):
    model, y, y_b1, y_exact, timed = planted
    points = [make_point(bc.native(threads=1), model, B, y, y_b1, y_exact, None, timed, None) for B in (1, 2, 4)]
    res = SweepResult(points, {"machine": "test"}, {"model": model.describe()})
    res.to_json(tmp_path / "r.json")
    back = SweepResult.from_json(tmp_path / "r.json")
    assert back.points == res.points and back.env == res.env and back.config == res.config
    res.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["batch_size"]) for r in rows] == [1, 2, 4] and list(rows[0]) == list(POINT_FIELDS)
    assert float(rows[2]["gflops"]) == pytest.approx(points[2]["gflops"])
