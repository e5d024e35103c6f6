"""The GEMM's tuning (batchcore/measure/tuning.py, cpp/src/gemm_tuning.cpp): every candidate schedule gives the
same bits for every order, thread count and instruction set (on data with a wide range of magnitudes, a
layer and a convolution); the search picks a planted faster schedule and keeps the defaults among equals or
against a winner that does not hold head to head; a planted bad cached configuration is read, and the
tuner's choice replaces it and beats it (on a planted timer: the verdict never rests on this machine's
speed; benchmarks/cpu_gemm.py measures the real one); BATCHCORE_TUNE=0 keeps the defaults; the tuning in
force is in every native point's settings."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import batchcore as bc
from batchcore import _core
from batchcore.measure import tuning
from batchcore.measure.orders import run_options

ORDERS = ["seq", "seq-nofma", "chunk:7", "splitk:4", "lanes:16", "pairwise", "kahan", "dot2", "f64", "exact"]
# Every schedule the search can choose, and the extremes of the ranges (tiles of 12 rows and of 96)
CANDIDATES = [replace(tuning.DEFAULTS, tile_l2_eighths=e, traversal=t, min_work_log2=m)
              for e in tuning.TILE_SHARES for t in tuning.TRAVERSALS for m in tuning.MIN_WORK]
EXTREMES = [replace(tuning.DEFAULTS, tile_l2_eighths=e, traversal=t, min_work_log2=m)
            for e in (1, 8) for t in tuning.TRAVERSALS for m in (12, 26)]


@pytest.fixture
def restore():
    before = tuning.in_force()
    yield
    tuning.apply(before)


def wide_range(shape, seed):
    """Normal numbers scaled by 2^-20..2^20: sums whose roundings differ with any change of order."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp2(rng.integers(-20, 21, shape))).astype(np.float32)


def test_every_schedule_gives_the_same_bits(restore):
    """Every candidate of the search on four orders (a batch past the K-outer threshold); at the extremes
    of the ranges, every order, thread count and instruction set; a convolution (its own tiles are sized
    from the GEMM's) at each."""
    torch = pytest.importorskip("torch")
    linear = bc.Model([bc.Layer("linear", {"weight": wide_range((70, 1500), 1), "bias": wide_range(70, 2)})], 1500)
    x = wide_range((130, 1500), 3)  # from 128 rows seq takes the K-outer schedule, whose groups the tuning sizes
    conv = bc.from_torch(torch.nn.Conv2d(3, 8, 5, padding=2).float(), input_shape=(3, 20, 20))
    images = wide_range((6, 3, 20, 20), 4)
    layer, net = bc.backends.cpu_model(linear), bc.backends.cpu_model(conv)
    best = _core.simd_level()
    every = [(order, threads, simd) for order in ORDERS for threads in (1, 2) for simd in _core.simd_levels()
             if (threads == 2 and simd == best) or order in ("seq", "lanes:16")]
    some = [(order, 2, best) for order in ("seq", "lanes:16", "pairwise", "exact")]
    want: dict = {}
    for t, runs in [(tuning.DEFAULTS, every), *[(c, some) for c in CANDIDATES], *[(e, every) for e in EXTREMES]]:
        tuning.apply(t)
        for order, threads, simd in runs:
            options = run_options(order, threads=threads, simd=simd)
            got = np.concatenate([layer.run(x, options)[0].ravel(), net.run(images, options)[0].ravel()])
            assert np.array_equal(got.view(np.uint32), want.setdefault((order, threads, simd), got).view(np.uint32)), \
                (t, order, threads, simd)


def test_out_of_range_settings_are_named():
    with pytest.raises(bc.ArgumentError, match="tile_l2_eighths must lie in 1..8, got 9"):
        _core.set_gemm_tuning(9, 0, 18)
    with pytest.raises(bc.ArgumentError, match="traversal must lie in 0..2"):
        _core.set_gemm_tuning(3, 3, 18)
    with pytest.raises(bc.ArgumentError, match="min_work_log2 must lie in 12..26"):
        _core.set_gemm_tuning(3, 0, 40)


def planted_timer(best: tuning.Tuning | None, gain: float = 1.2, fickle: tuning.Tuning | None = None):
    """Seconds per call: 1 ms for every schedule, ``best`` ``gain`` times faster; ``fickle`` fast only in its
    first rounds (noise that picks a winner once)."""
    calls: dict[tuning.Tuning, int] = {}

    def time_of(t, workload):
        calls[t] = calls.get(t, 0) + 1
        if t == best:
            return 1e-3 / gain
        if t == fickle and calls[t] <= 3 * len(tuning.LARGE):
            return 1e-3 / 1.5
        return 1e-3

    return time_of


def test_the_search_picks_a_planted_faster_schedule_and_otherwise_keeps_the_defaults():
    fast = replace(tuning.DEFAULTS, tile_l2_eighths=4, traversal="panels")
    found = tuning.search(planted_timer(fast))
    assert found.knobs() == fast.knobs() and found.source == "tuned" and found.gain == pytest.approx(1.2)
    small = replace(tuning.DEFAULTS, min_work_log2=16)
    assert tuning.search(planted_timer(small)).knobs() == small.knobs()
    assert tuning.search(planted_timer(None)).knobs() == tuning.DEFAULTS.knobs()  # all equal: the defaults
    assert tuning.search(planted_timer(fast, gain=1.03)).knobs() == tuning.DEFAULTS.knobs()  # within the margin
    fickle = replace(tuning.DEFAULTS, tile_l2_eighths=6, traversal="row-tiles")
    assert tuning.search(planted_timer(None, fickle=fickle)).knobs() == tuning.DEFAULTS.knobs()


def test_a_planted_bad_cached_configuration_is_replaced_by_a_faster_one(tmp_path, monkeypatch, restore):
    monkeypatch.setenv("BATCHCORE_CACHE_DIR", str(tmp_path))
    bad = replace(tuning.DEFAULTS, tile_l2_eighths=8, traversal="panels", min_work_log2=24)
    good = replace(tuning.DEFAULTS, tile_l2_eighths=2, traversal="row-tiles")
    path, _ = tuning._cache_path(_core.default_threads())
    tmp_path.joinpath(path.rsplit("/", 1)[1]).write_text(json.dumps(replace(bad, source="tuned").to_dict()))
    read = tuning.tune()  # the cache is read, not measured
    assert read.knobs() == bad.knobs() and read.source == path
    assert tuning.in_force().knobs() == bad.knobs() and tuning.in_force().source == path

    def slow_bad(t, workload):  # the planted machine: the bad schedule twice as slow, the good one 1.3x faster
        return 2e-3 if t.knobs()[:2] == bad.knobs()[:2] else 1e-3 / 1.3 if t.knobs()[:2] == good.knobs()[:2] else 1e-3

    monkeypatch.setattr(tuning, "_layer_timer", lambda threads: slow_bad)
    fresh = tuning.tune(refresh=True)
    assert fresh.knobs()[:2] == good.knobs()[:2] and fresh.source == "tuned"
    assert slow_bad(fresh, tuning.LARGE[0]) < slow_bad(bad, tuning.LARGE[0])  # the choice beats the planted one
    with open(path) as f:
        assert json.load(f)["tile_l2_eighths"] == 2  # and replaced it in the cache
    assert tuning.in_force().knobs() == fresh.knobs()


def test_a_damaged_cache_is_measured_again(tmp_path, monkeypatch, restore):
    monkeypatch.setenv("BATCHCORE_CACHE_DIR", str(tmp_path))
    path, _ = tuning._cache_path(_core.default_threads())
    tmp_path.joinpath(path.rsplit("/", 1)[1]).write_text('{"tile_l2_eighths": 3, "traversal": "sideways"}')
    monkeypatch.setattr(tuning, "_layer_timer", lambda threads: planted_timer(None))
    assert tuning.tune().source == "tuned"


def test_tune_zero_keeps_the_defaults_and_points_record_the_schedule(monkeypatch, restore):
    monkeypatch.setenv("BATCHCORE_TUNE", "0")
    tuning._at_first_use.cache_clear()
    assert tuning.ensure_tuned().source == "BATCHCORE_TUNE=0"
    res = bc.sweep(bc.mlp([32, 8], seed=0), [1, 4], backends=[bc.native()], ceilings=False, progress=False, rounds=1,
                   timer=bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5))
    assert all(p["settings"]["gemm_tuning"]["traversal"] == "by-reads" for p in res.points)
    monkeypatch.setenv("BATCHCORE_TUNE", "yes")
    with pytest.raises(bc.ArgumentError, match="BATCHCORE_TUNE must be 0"):
        tuning.ensure_tuned()
    assert bc.tune is tuning.tune
