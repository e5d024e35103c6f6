"""The timer's stopping rule, statistics, block sizing and discard count, on planted call durations and a
fake clock (exact expectations computed here, independently), plus a real measurement."""

import math

import numpy as np
import pytest
from scipy import stats

import batchcore as bc
from batchcore.measure.timing import Timer


def median_ci_reference(samples, confidence=0.95):
    """[x_(j), x_(n+1-j)] with j the largest index such that P(Binomial(n, 1/2) <= j - 1) <= alpha / 2."""
    x, n = np.sort(samples), len(samples)
    tail = (1 - confidence) / 2
    j = max((j for j in range(1, n // 2 + 1) if stats.binom.cdf(j - 1, n, 0.5) <= tail), default=0)
    return (x[0], x[-1]) if j == 0 else (x[j - 1], x[n - j])


def test_constant_calls_stop_once_min_time_is_spent():
    # 2 ms per call, free clock: the interval is a point from 6 samples on, so the rule waits for
    # min_time_s: 0.099 s / 2 ms -> 50 samples, checked at every sample below 64. (The fake clock counts
    # seconds in doubles, hence approx below.)
    m = Timer(min_time_s=0.099, min_samples=10).replay([2e6])
    assert m.target_met and not m.timed_out
    assert m.samples == 50 and m.calls_per_sample == 1
    for v in (m.median_ms, m.ci_low_ms, m.ci_high_ms, m.min_ms, m.max_ms):
        assert v == pytest.approx(2.0, rel=1e-9)
    assert m.ci_rel_halfwidth == pytest.approx(0.0, abs=1e-9) and not m.noisy


def test_min_samples_is_honoured_when_time_is_not_the_limit():
    m = Timer(min_time_s=0.0, min_samples=37).replay([5e6])
    assert m.target_met and m.samples == 37


def test_wide_samples_time_out_and_statistics_match_numpy():
    # Alternating 1 ms / 3 ms after two warm-up calls (1, 3): the interval never narrows to 1 %, so the
    # timeout ends it at the sample that brings the sampling time past 0.199 s: 100 samples, 50 of each.
    m = Timer(timeout_s=0.199, min_time_s=0.05, warmup_s=0.0, warmup_calls=2).replay([1e6, 3e6])
    assert m.timed_out and not m.target_met
    assert m.samples == 100
    x = np.array(m.samples_ms)
    assert np.allclose(np.sort(x), [1.0] * 50 + [3.0] * 50, rtol=1e-9)
    for q, got in [(0.25, m.q1_ms), (0.5, m.median_ms), (0.75, m.q3_ms), (0.9, m.p90_ms), (0.99, m.p99_ms)]:
        assert got == pytest.approx(np.quantile(x, q), rel=1e-12)
    assert m.mean_ms == pytest.approx(np.mean(x), rel=1e-12)
    assert (m.min_ms, m.max_ms) == (x.min(), x.max())
    assert m.noisy  # IQR / median = 1


@pytest.mark.parametrize("n", [6, 10, 37, 100, 1001])
def test_median_interval_is_the_order_statistic_interval(n):
    # Planted distinct durations; one warm-up call, min_samples = max_samples = n: the n samples are the
    # planted ones, rotated by one.
    rng = np.random.default_rng(n)
    planted = rng.uniform(1e6, 2e6, n)
    m = Timer(min_samples=n, max_samples=n, min_time_s=0.0, target=1e-9, warmup_s=0.0).replay(planted)
    assert m.samples == n and not m.target_met  # a 1e-9 target cannot be met by distinct samples
    assert np.allclose(m.samples_ms, np.roll(planted, -1) / 1e6, rtol=1e-9)
    low, high = median_ci_reference(np.array(m.samples_ms))
    assert (m.ci_low_ms, m.ci_high_ms) == (low, high)
    med = np.median(m.samples_ms)
    assert m.ci_rel_halfwidth == pytest.approx(max(med - low, high - med) / med, rel=1e-12)


def test_too_few_samples_have_no_interval():
    m = Timer(min_samples=5, max_samples=5, min_time_s=0.0, warmup_s=0.0).replay([1e6, 2e6, 3e6, 4e6, 5e6])
    assert m.samples == 5 and math.isinf(m.ci_rel_halfwidth) and not m.target_met
    assert m.to_dict()["ci_rel_halfwidth"] is None


def test_blocks_make_clock_overhead_negligible():
    # A clock read costs 50 ns and a call 1000 ns: a block must last >= 50 ns / 1e-4 = 0.5 ms. The last
    # warm-up call measures 1050 ns (the second clock read included), so a block is ceil(5e5 / 1050)
    # = 477 calls, and each sample is (477 calls + one clock read) / 477.
    m = Timer(min_time_s=0.01, min_samples=10).replay([1000.0], clock_read_ns=50.0)
    assert m.clock_overhead_ns == pytest.approx(50.0)
    assert m.calls_per_sample == 477
    assert m.median_ms == pytest.approx((477 * 1000 + 50) / 477 / 1e6, rel=1e-6)
    assert m.target_met


def test_rejected_samples_are_counted_not_kept():
    # Every third sample rejected (e.g. a GPU clock below 75 %): the kept samples still reach the
    # count the rule needs, and the rejected ones are all counted.
    m = Timer(min_time_s=0.0, min_samples=20).replay([1e6], rejected=[False, False, True])
    assert m.samples == 20 and m.discarded == 9  # 29 taken: 20 kept, rejects at positions 3, 6, ..., 27
    assert m.target_met


def test_all_samples_rejected_ends_at_the_timeout_with_nothing_claimed():
    m = Timer(timeout_s=0.0495, min_time_s=0.01).replay([1e6], rejected=[True])
    assert m.timed_out and not m.target_met and m.samples == 0 and m.discarded == 50
    assert math.isnan(m.median_ms)


@pytest.mark.parametrize("bad", [dict(target=0), dict(target=-1), dict(confidence=1.0), dict(min_samples=0),
                                 dict(timeout_s=0), dict(warmup_s=-1), dict(warmup_calls=0),
                                 dict(max_samples=3, min_samples=10), dict(min_time_s=float("nan")),
                                 dict(min_samples="ten"), dict(overhead_frac=1e-300), dict(overhead_frac=1e-12),
                                 dict(warmup_s=1e9, timeout_s=1), dict(min_time_s=20, timeout_s=15),
                                 dict(max_samples=10**8), dict(warmup_calls=2**40)])
def test_bad_settings_raise_naming_the_setting(bad):
    with pytest.raises(bc.ArgumentError, match=next(iter(bad))):
        Timer(**bad).policy()


def test_real_measurement_of_a_native_forward_pass():
    model = bc.mlp([64, 32, 10], seed=0)
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    t = Timer(min_time_s=0.05, timeout_s=2.0)
    one_thread = bc.orders.run_options("seq", threads=1)
    y, summary, peak, predicted = bc.backends.cpu_model(model).measure(x, t.policy(), one_thread)
    assert np.array_equal(y, bc.native(threads=1).run(model, x))
    assert summary["median_ns"] > 0 and len(summary["samples_ns"]) >= 10
    assert summary["calls_per_sample"] >= 1 and peak == predicted
    m = t.measure(lambda: bc.backends.cpu_model(model).run(x, one_thread))
    assert m.samples >= 10 and m.min_ms <= m.median_ms <= m.max_ms and m.sampling_s >= 0.05


class FakeEvent:
    """A CUDA event on a fake device clock: record() stamps the clock's time."""

    def __init__(self, clock):
        self.clock, self.t = clock, None

    def record(self):
        self.t = self.clock["ms"]

    def synchronize(self):
        pass


def test_event_sampler_times_blocks_hot_and_calls_alone_cold():
    from batchcore.backends import event_sampler

    clock = {"ms": 0.0}
    start, end = FakeEvent(clock), FakeEvent(clock)

    def run():  # a pass takes 2 ms of device time
        clock["ms"] += 2.0

    def evict():  # an eviction takes 5 ms, which no sample may include
        clock["ms"] += 5.0
        evictions.append(1)

    evictions = []
    hot = event_sampler(run, start, end, lambda e: e.t - start.t)
    assert hot(7) == (14e6, False) and evictions == []
    cold = event_sampler(run, start, end, lambda e: e.t - start.t, evict)
    assert cold(3) == (6e6, False) and len(evictions) == 3


class FakeSmClock:
    """SM 0's clock as the core reads it, planted: the sample bracketed by marks number j is throttled
    when ``plan[j]`` (cyclically)."""

    def __init__(self, plan):
        self.plan, self.marks, self.stops = plan, [], 0

    def mark_start(self):
        self.marks.append("start")

    def mark_stop(self):
        self.marks.append("stop")
        self.stops += 1

    def throttled(self):
        return self.plan[(self.stops - 1) % len(self.plan)]


def test_event_sampler_discards_throttled_samples_through_the_timer():
    from batchcore.backends import event_sampler

    clock = {"ms": 0.0}
    start, end = FakeEvent(clock), FakeEvent(clock)

    def run():
        clock["ms"] += 1.0

    sm = FakeSmClock([False, True, True])  # two of every three samples ran throttled
    sample = event_sampler(run, start, end, lambda e: e.t - start.t, sm_clock=sm)
    assert sample(4) == (4e6, False) and sample(4) == (4e6, True)
    assert sm.marks == ["start", "stop", "start", "stop"]  # one bracket per sample, around the whole block

    m = Timer(min_samples=10, min_time_s=0.0, warmup_s=0.0).measure(run, sample=sample)
    taken = m.samples + m.discarded
    assert m.samples >= 10 and m.discarded > 0
    # The clock's plan continues from the two samples above: of `taken` samples, those at plan positions
    # 1 and 2 (mod 3) are the throttled ones, every one of them discarded.
    assert m.discarded == sum(1 for j in range(2, 2 + taken) if j % 3 != 0)
    assert all(s == 1.0 for s in m.samples_ms)  # per call: 1 ms; no throttled sample in the statistics


def test_a_block_never_outlasts_a_tenth_of_the_timeout():
    # 1 us calls, a 30 ns clock and overhead_frac 1e-7 ask for 0.3 s blocks; timeout_s / min_samples caps
    # a block at 0.1 s: 1e5 calls, 10 samples, and sampling ends by the timeout plus one block.
    m = Timer(overhead_frac=1e-7, timeout_s=1.0, min_time_s=0.0, warmup_s=0.0).replay([1000.0], clock_read_ns=30.0)
    assert 0.1 / 1.03e-6 - 1 <= m.calls_per_sample <= 100_001  # the last warm-up call includes a clock read
    assert m.median_ms > 0 and m.sampling_s <= 1.0 + 0.1 + 1e-6


def test_a_warm_up_longer_than_the_timeout_ends_at_the_timeout():
    # warmup_calls asks for a million 1 ms calls (1000 s); the warm-up stops at the 0.05 s timeout.
    m = Timer(warmup_calls=10**6, timeout_s=0.05, min_time_s=0.0).replay([1e6])
    assert m.warmup_s <= 0.05 + 1e-3 + 1e-9 and m.samples >= 1


def test_pooled_rounds_keep_every_sample_and_span_the_round_medians():
    t = Timer(min_samples=10, max_samples=10, min_time_s=0.0, warmup_s=0.0)
    calm = [t.replay([1e6 + 1e3 * i]) for i in range(5)]       # rounds near 1 ms
    spell = t.replay([1.9e6])                                   # one round in a slow spell: 1.9 ms
    m = bc.Measurement.pooled(calm + [spell], t)
    samples = np.array([s for r in calm + [spell] for s in r.samples_ms])
    assert m.samples == 60 and m.samples_ms == list(samples)
    assert m.median_ms == np.median(samples) and m.p90_ms == np.quantile(samples, 0.9)
    # The interval reaches the slow round's median although the pooled median barely moved.
    assert m.ci_high_ms == pytest.approx(1.9) and m.ci_low_ms <= 1.0 + 1e-9
    assert m.ci_rel_halfwidth == pytest.approx((1.9 - m.median_ms) / m.median_ms)
    assert not m.target_met and m.round_medians_ms == [r.median_ms for r in calm + [spell]]
    one = bc.Measurement.pooled([calm[0]], t)
    assert one is calm[0]


def test_the_default_policy_takes_the_settings_the_environment_names(monkeypatch):
    from batchcore.measure.timing import as_timer, default_timer

    monkeypatch.delenv("BATCHCORE_TIMER", raising=False)
    assert default_timer() == Timer()
    monkeypatch.setenv("BATCHCORE_TIMER", " min_time_s=0 ,target=0.5,min_samples=3")
    assert default_timer() == Timer(min_time_s=0.0, target=0.5, min_samples=3)
    assert isinstance(default_timer().min_samples, int)
    explicit = Timer(target=0.02)
    assert as_timer(explicit) is explicit and as_timer(None) == default_timer()  # a timer passed is kept
    model, x = bc.mlp([8, 4], seed=0), np.ones((2, 8), np.float32)
    res = bc.sweep(model, batch_sizes=[1], backends=[bc.native()], data=x, rounds=1, ceilings=False)
    assert res.points[0]["timer"]["target"] == 0.5 and res.points[0]["timer"]["min_samples"] == 3


@pytest.mark.parametrize("setting, says", [
    ("target", "'target' is not a setting name=value"), ("tolerance=0.1", "'tolerance=0.1' is not a setting"),
    ("target=fast", "target='fast' is not a number"), ("min_samples=2.5", "min_samples='2.5' is not a number"),
    ("target=-1", "target"), ("timeout_s=0.1,min_time_s=1", "min_time_s"),
])
def test_a_bad_default_policy_is_named(setting, says, monkeypatch):
    from batchcore.measure.timing import default_timer

    monkeypatch.setenv("BATCHCORE_TIMER", setting)
    with pytest.raises(bc.ArgumentError, match=r"\$BATCHCORE_TIMER: ") as caught:
        default_timer()
    assert says in str(caught.value)
    with pytest.raises(bc.ArgumentError, match=r"\$BATCHCORE_TIMER: "):
        bc.sweep(bc.mlp([8, 4], seed=0), batch_sizes=[1], backends=[bc.native()], rows=2)
