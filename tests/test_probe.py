"""Peak probes: rates that are ceilings for what runs on this machine, a clock consistent with the fma
width, a roofline that is min(peak, bandwidth x intensity), and a per-machine cache that is used,
refreshed and survives damage."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import batchcore as bc
from batchcore.probes import Probe, cache_dir, last_level_cache_bytes


@pytest.fixture(scope="module")
def one_thread():
    return bc.probe(threads=1)


def test_fma_peak_is_a_ceiling_for_the_gemm(one_thread):
    model = bc.mlp([512, 512], seed=0)
    x = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
    t = bc.native(threads=1).measure(model, x, bc.Timer(min_samples=5, min_time_s=0.1)).timing
    gemm = 2 * 256 * 512 * 512 / (t.median_ms * 1e-3) / 1e9
    assert 0 < gemm < 1.5 * one_thread.peak_gflops  # generous for a shared machine, never 2x the ceiling


def test_peak_over_clock_is_a_whole_fma_width(one_thread):
    # Two independent probes: fma throughput and the clock from dependent adds. Their ratio is the flops
    # a core retires per cycle, which hardware makes a power of two (scalar 2 ... AVX-512 x 2 pipes 64).
    assert 0.5 < one_thread.clock_ghz < 7.0
    fpc = one_thread.flops_per_cycle
    nearest = 2 ** round(np.log2(fpc))
    assert abs(fpc - nearest) / nearest < 0.15, f"{fpc:.1f} flop/cycle is not near a power of two"


def test_triad_bandwidth_is_a_ceiling_for_a_copy(one_thread):
    # One thread copying arrays 4x the last-level cache cannot move bytes much faster than the triad
    # probe's bandwidth on the same thread count (the copy is counted as read + write, as the triad).
    n = max(4 * (last_level_cache_bytes() or 0), 64 << 20) // 4
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    np.copyto(dst, src)
    best = min(_seconds(lambda: np.copyto(dst, src)) for _ in range(5))
    assert 0 < 8 * n / best / 1e9 < 1.5 * one_thread.bandwidth_gbs


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_roofline_is_the_lower_of_peak_and_bandwidth_times_intensity():
    p = Probe("cpu", 2, "avx512", peak_gflops=200.0, bandwidth_gbs=25.0, cache_bandwidth_gbs=100.0,
              clock_ghz=3.0, last_level_cache_bytes=32 << 20, machine="m", measured_at="t")
    assert p.ridge_intensity == 8.0
    assert p.roofline_gflops(0.5) == 12.5 and p.roofline_gflops(8.0) == 200.0 and p.roofline_gflops(100) == 200.0
    # A working set within half the last-level cache streams at the cache's bandwidth, a larger one at memory's.
    assert p.roofline_gflops(0.5, 16 << 20) == 50.0 and p.roofline_gflops(0.5, (16 << 20) + 1) == 12.5
    assert p.roofline_gflops(4.0, 1 << 20) == 200.0
    assert p.flops_per_cycle == pytest.approx(200 / 6)


def test_cache_bandwidth_exceeds_memory_bandwidth(one_thread):
    assert one_thread.cache_bandwidth_gbs > one_thread.bandwidth_gbs


def test_min_traffic_bytes_counts_parameters_input_and_output_once():
    model = bc.mlp([6, 5, 3], seed=0)  # linear 6->5 (30 + 5), relu, linear 5->3 (15 + 3)
    assert model.min_traffic_bytes(1) == 4 * (53 + 6 + 3)
    assert model.min_traffic_bytes(10) == 4 * (53 + 10 * 9)


def test_last_level_cache_is_found():
    llc = last_level_cache_bytes()
    assert llc is None or llc >= 1 << 20


def test_probe_is_cached_on_disk_and_read_by_a_new_process(one_thread):
    path = one_thread.source if one_thread.source != "measured" else None
    files = os.listdir(cache_dir())
    assert any(f.startswith("probe-cpu-") for f in files)
    code = "import batchcore as bc; p = bc.probe(threads=1); print(p.source); print(p.peak_gflops)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "BATCHCORE_CACHE_DIR": cache_dir()}).stdout.split()
    assert out[0].startswith(cache_dir()) and float(out[1]) == one_thread.peak_gflops
    if path:
        assert out[0] == path


def test_a_damaged_cache_file_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHCORE_CACHE_DIR", str(tmp_path))
    code = "import batchcore as bc; print(bc.probe(threads=1).source)"
    run = lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,  # noqa: E731
                                 env={**os.environ}).stdout.strip()
    assert run() == "measured"
    (cached,) = tmp_path.iterdir()
    assert json.loads(cached.read_text())["threads"] == 1
    cached.write_text('{"device": "cpu", "peak')  # a torn write
    assert run() == "measured"
    assert run() == str(cached)


def test_refresh_measures_again(one_thread):
    assert bc.probe(threads=1, refresh=True).source == "measured"


@pytest.mark.parametrize("kw, error", [
    (dict(threads=0), bc.ShapeError), (dict(threads=True), bc.ShapeError), (dict(refresh="yes"), bc.ArgumentError),
    (dict(device="tpu"), bc.DeviceUnavailableError),
])
def test_bad_probe_arguments_are_named(kw, error):
    with pytest.raises(error):
        bc.probe(**kw)


def test_gpu_probe_without_a_gpu_says_why():
    if bc.devices.gpu_count() > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(bc.DeviceUnavailableError):
        bc.probe("cuda")
