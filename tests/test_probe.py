"""The peak probe reports a positive rate that the GEMM cannot beat by much (it is the ceiling)."""

import numpy as np

import batchcore as bc


def test_probe_peak_is_a_ceiling_for_the_gemm():
    peak = bc.probe_peak(threads=1, seconds=0.2)
    assert peak["gflops"] > 0 and peak["threads"] == 1
    model = bc.mlp([512, 512], seed=0)
    x = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
    t = bc.native(threads=1).measure(model, x, bc.Timer(min_samples=5, min_time_s=0.1)).timing
    gemm = 2 * 256 * 512 * 512 / (t.median_ms * 1e-3) / 1e9
    assert gemm < 1.5 * peak["gflops"]  # generous: noise on a shared machine, but never 2x the ceiling
