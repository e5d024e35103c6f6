"""best_batch, knee and compare on planted points: every verdict, including "not sure", is derived here
from the planted intervals by hand."""

import math

import numpy as np
import pytest

import batchcore as bc
from batchcore.measure.timing import quantile_ci
from batchcore.results.decisions import best_batch, compare_points, knee


def pt(B, ms, rel=0.01, backend="b", **extra):
    """A point whose median is `ms` with a CI of +-rel around it."""
    return {"backend": backend, "batch_size": B, "time_ms": ms, "time_ms_ci_low": ms * (1 - rel),
            "time_ms_ci_high": ms * (1 + rel), "time_ms_mean": ms, "time_ms_p90": ms, "time_ms_p99": ms, **extra}


CURVE = [pt(1, 1.0), pt(8, 2.0), pt(64, 10.0), pt(256, 50.0)]  # 1000, 4000, 6400, 5120 rows/s


def test_best_batch_picks_the_fastest_within_budget_and_is_sure_when_apart():
    r = best_batch(CURVE, latency_ms=12, metric="median")
    assert r.batch_size == 64 and r.sure and r.tied == [] and r.rows_per_s == pytest.approx(6400)
    assert best_batch(CURVE, latency_ms=5, metric="median").batch_size == 8
    none = best_batch(CURVE, latency_ms=0.5, metric="median")
    assert none.batch_size is None and "no batch size" in none.reason


def test_best_batch_is_unsure_inside_the_noise():
    # B=128: 20.2 ms (6337 rows/s) with +-6 %: its interval reaches above the winner's lower bound (6337).
    pts = [pt(64, 10.0, rel=0.05), pt(128, 20.2, rel=0.06)]
    r = best_batch(pts, latency_ms=100, metric="median")
    assert r.batch_size == 64 and not r.sure and r.tied == [128]
    # The budget inside the winner's latency interval: eligible by its median, not surely within.
    r = best_batch([pt(64, 10.0, rel=0.05)], latency_ms=10.2, metric="median")
    assert r.batch_size == 64 and not r.sure and r.budget_unsure == [64]


def binomial_cdf(t, n, q):
    return sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(0, t + 1))


def test_quantile_ci_is_the_order_statistic_interval():
    x = np.random.default_rng(0).exponential(size=400)
    s = np.sort(x)
    low, high = quantile_ci(x, 0.99)
    # By hand: j = smallest t with P(X <= t) >= 2.5 %, k = smallest t with P(X <= t) >= 97.5 %, plus one.
    j = next(t for t in range(401) if binomial_cdf(t, 400, 0.99) >= 0.025)
    k = next(t for t in range(401) if binomial_cdf(t, 400, 0.99) >= 0.975) + 1
    assert low == s[j - 1]
    assert high == (s[k - 1] if k <= 400 else math.inf)
    assert quantile_ci(x[:10], 0.99)[1] == math.inf  # ten samples cannot bound a p99 from above


def test_best_batch_on_p99_uses_the_samples_interval():
    rng = np.random.default_rng(1)
    tight = rng.normal(5.0, 0.01, 2000)
    wide = np.concatenate([rng.normal(4.0, 0.01, 1960), rng.uniform(4.0, 9.0, 40)])  # a long tail
    pts = [pt(32, 5.0, timing={"samples_ms": list(tight)}),
           pt(64, 4.0, timing={"samples_ms": list(wide)})]
    pts[0]["time_ms_p99"], pts[1]["time_ms_p99"] = float(np.quantile(tight, 0.99)), float(np.quantile(wide, 0.99))
    # B=64 is faster, but its tail puts its p99 far past 5.1 ms; B=32's whole p99 interval is within it.
    r = best_batch(pts, latency_ms=5.1, metric="p99")
    assert r.batch_size == 32 and r.sure
    r64 = best_batch(pts, latency_ms=100, metric="p99")
    assert r64.batch_size == 64


def test_best_batch_errors():
    with pytest.raises(bc.ArgumentError, match="metric"):
        best_batch(CURVE, 5, metric="p50")
    with pytest.raises(bc.ArgumentError, match="latency"):
        best_batch(CURVE, -1)
    with pytest.raises(bc.ArgumentError, match="several backends"):
        best_batch(CURVE + [pt(1, 1.0, backend="other")], 5)
    assert best_batch(CURVE + [pt(1, 0.1, backend="other")], 5, "median", backend="b").batch_size == 8


def test_knee_where_doubling_stops_paying():
    # Throughput: 1000, 1900, 3600, 6000, 6100 rows/s: the gains 90 %, 89 %, 67 %, then 1.7 %.
    times = {1: 1 / 1000, 2: 2 / 1900, 4: 4 / 3600, 8: 8 / 6000, 16: 16 / 6100}
    pts = [pt(B, t * 1e3, rel=0.002) for B, t in times.items()]
    k = knee(pts)
    assert k.batch_size == 8 and k.sure and k.between == (8, 8)
    assert [s[:2] for s in k.steps] == [(1, 2), (2, 4), (4, 8), (8, 16)]
    assert k.steps[3][2] == pytest.approx(6100 / 6000)


def test_knee_is_unsure_when_a_step_is_inside_the_noise():
    # 8 -> 16 gains 5.5 % by the medians, but each median is only known to +-2 %.
    times = {4: 4 / 3000, 8: 8 / 6000, 16: 16 / 6330, 32: 32 / 6300}  # 16 -> 32 surely short: [0.96, 1.04]
    pts = [pt(B, t * 1e3, rel=0.02) for B, t in times.items()]
    k = knee(pts)
    assert k.batch_size == 16 and not k.sure and k.between == (8, 16)


@pytest.mark.parametrize("old, new, min_change, verdict", [
    # ratio interval [new low / old high, new high / old low], against [1 / (1 + t), 1 + t]
    ((10.0, 9.9, 10.1), (9.0, 8.9, 9.1), 0.05, "FASTER"),     # [0.881, 0.919] below 0.952
    ((10.0, 9.9, 10.1), (11.0, 10.9, 11.1), 0.05, "SLOWER"),   # [1.079, 1.121] above 1.05
    ((10.0, 9.95, 10.05), (10.05, 10.0, 10.1), 0.05, "SAME"),  # [0.995, 1.015] inside
    ((10.0, 9.0, 11.0), (10.2, 9.5, 11.5), 0.05, "UNSURE"),    # [0.864, 1.278] straddles both bounds
    ((10.0, None, None), (5.0, 4.9, 5.1), 0.05, "UNSURE"),     # no interval
    ((10.0, 9.9, 10.1), (10.4, 10.3, 10.5), 0.05, "UNSURE"),   # [1.020, 1.061] straddles 1.05
    ((10.0, 9.9, 10.1), (10.4, 10.3, 10.5), 0.0, "SLOWER"),    # ... and is above 1
    ((10.0, 9.9, 10.1), (11.0, 10.9, 11.1), 0.15, "SAME"),     # a 10 % change under a 15 % threshold
])
def test_compare_points(old, new, min_change, verdict):
    a = {"time_ms": old[0], "time_ms_ci_low": old[1], "time_ms_ci_high": old[2]}
    b = {"time_ms": new[0], "time_ms_ci_low": new[1], "time_ms_ci_high": new[2]}
    assert compare_points(a, b, min_change) == verdict


def test_knee_says_when_none_lies_inside_the_range():
    # Throughput gains 90 %, 80 %, 60 % per step, each beyond its +-0.2 % interval: surely no knee yet.
    times = {1: 1 / 1000, 2: 2 / 1900, 4: 4 / 3420, 8: 8 / 5472}
    k = knee([pt(B, t * 1e3, rel=0.002) for B, t in times.items()])
    assert k.batch_size is None and k.sure and k.between == (None, None) and "above 8" in k.reason
    # The last step gains 3 % by the medians, within [0.990, 1.072] given +-2 % intervals: a knee at 4
    # by the estimate, but perhaps none inside the range.
    times[8] = 8 / (3420 * 1.03)
    k = knee([pt(B, t * 1e3, rel=0.02) for B, t in times.items()])
    assert k.batch_size == 4 and not k.sure and k.between == (4, None)


def test_compare_two_result_files(tmp_path):
    old = bc.SweepResult([pt(1, 1.0), pt(8, 2.0), pt(64, 10.0)])
    new = bc.SweepResult([pt(1, 0.5), pt(8, 2.001), pt(64, 12.0), pt(128, 30.0)])
    old.to_json(tmp_path / "old.json")
    new.to_json(tmp_path / "new.json")
    c = bc.compare(tmp_path / "old.json", tmp_path / "new.json")
    assert [(r["batch_size"], r["verdict"]) for r in c.rows] == [(1, "FASTER"), (8, "SAME"), (64, "SLOWER")]
    assert c.counts() == {"SAME": 1, "FASTER": 1, "SLOWER": 1, "UNSURE": 0}
    assert "SLOWER" in str(c)


# The decisions' logic is on trial, not the machine's speed: a sweep on a machine busy with something else
# may run above a peak probed at a quieter moment, which the sweep says in a warning.
@pytest.mark.filterwarnings("ignore:.*of a freshly measured peak")
def test_sweep_result_decisions_on_a_real_sweep():
    model = bc.mlp([256, 256], seed=0)
    res = bc.sweep(model, [1, 4, 16, 64], [bc.native(threads=1)], rows=64,
                   timer=bc.Timer(min_samples=20, min_time_s=0.05, timeout_s=2))
    r = res.best_batch(latency_ms=1e6, metric="p99")
    assert r.batch_size in (1, 4, 16, 64) and r.metric == "p99"
    assert res.knee().batch_size in (1, 4, 16, None)
