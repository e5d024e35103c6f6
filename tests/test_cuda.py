"""The CUDA extension: it must be compiled wherever nvcc is found, and on a GPU its reference kernel
gives the CPU's bits for every order and precision. GPU tests skip with a reason elsewhere."""

import shutil

import numpy as np
import pytest

import batchcore as bc
from batchcore.info import cuda_module

pytestmark = pytest.mark.gpu

cu = cuda_module()
needs_gpu = pytest.mark.skipif(cu is None or cu.device_count() == 0, reason="no CUDA GPU visible")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: _cuda is not built here")
def test_cuda_extension_was_built_where_nvcc_exists():
    assert cu is not None, "nvcc is on PATH but batchcore._cuda was not built"
    assert bc.info()["cuda_compiled"]


@pytest.mark.skipif(cu is None, reason="_cuda not built")
def test_without_gpu_the_kernel_raises_device_unavailable():
    if cu.device_count() > 0:
        pytest.skip("a GPU is present")
    x = np.ones((2, 3), np.float32)
    with pytest.raises(bc.DeviceUnavailableError):
        cu.linear_reference(x, np.ones((4, 3), np.float32), np.zeros(4, np.float32))


@pytest.mark.skipif(cu is None, reason="_cuda not built")
@pytest.mark.parametrize("call, exc", [
    (lambda x, W, b: cu.linear_reference(x.tolist(), W, b), bc.DTypeError),
    (lambda x, W, b: cu.linear_reference(x.astype(np.float64), W, b), bc.DTypeError),
    (lambda x, W, b: cu.linear_reference(x, np.ones((4, 2), np.float32), b), bc.ShapeError),
    (lambda x, W, b: cu.linear_reference(x, W, b, bc.orders.Order("seq"), "fp64"), bc.OrderError),
    (lambda x, W, b: cu.dot(x[0], W[0], 0.0, bc.orders.Order("seq"), "fp32", 10**6), bc.DeviceUnavailableError),
])
def test_cuda_errors_arrive_as_the_cores_classes(call, exc):
    """The CUDA bindings raise _core's exception classes from the one table both extensions read, before
    any device work (so this holds without a GPU too)."""
    x, W, b = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), np.zeros(4, np.float32)
    with pytest.raises(exc) as caught:
        call(x, W, b)
    assert type(caught.value) is exc and type(caught.value).__module__ == "batchcore._core"


@needs_gpu
@pytest.mark.parametrize("order", ["seq", "seq-nofma", "chunk:7", "splitk:4", "lanes:16", "pairwise", "kahan",
                                   "dot2", "f64", "exact"])
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
def test_gpu_reference_kernel_matches_cpu_bits(order, precision):
    rng = np.random.default_rng(0)
    M, N, K = 17, 45, 333
    x = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    from batchcore import _core

    m = _core.Model(K)
    m.add_linear(W, b)
    cpu = m.run(x, bc.orders.run_options(order, precision))[0]
    gpu = cu.linear_reference(x, W, b, _core.Order(order), precision)
    assert np.array_equal(cpu.view(np.uint32), gpu.view(np.uint32))


# -- the device model: the CPU's bits, exact memory, events, out of memory ------------------------------

ALL_ORDERS = ["seq", "seq-nofma", "chunk:7", "chunk:300", "splitk:4", "splitk:1000", "lanes:16", "pairwise", "kahan",
              "dot2", "f64", "exact"]


def _cpu_and_gpu(model, x, **kw):
    cpu = bc.native(device="cpu", **kw).run(model, x)
    gpu = bc.native(device="cuda", **kw).run(model, x)
    return cpu, gpu


@needs_gpu
@pytest.mark.parametrize("order", ALL_ORDERS)
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
@pytest.mark.parametrize("M", [1, 5, 8, 9, 130, 300])  # small-M kernel, tiled kernel, partial tiles
def test_device_linear_gives_the_cpu_bits(order, precision, M):
    rng = np.random.default_rng(M)
    K, N = 333, 145  # K crosses 8-deep slices and 256-wide stages unevenly; N leaves a partial tile
    model = bc.Model([bc.Layer("linear", {"weight": rng.standard_normal((N, K)).astype(np.float32),
                                          "bias": rng.standard_normal(N).astype(np.float32)})], K)
    x = rng.standard_normal((M, K)).astype(np.float32)
    cpu, gpu = _cpu_and_gpu(model, x, order=order, precision=precision)
    assert np.array_equal(cpu.view(np.uint32), gpu.view(np.uint32))


@needs_gpu
@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_whole_model_is_bitwise_equal_on_cpu_and_gpu(activation):
    model = bc.mlp([300, 257, 129, 10], activation=activation, head="softmax", seed=3)
    x = np.random.default_rng(1).standard_normal((77, 300)).astype(np.float32)
    for order in ["seq", "splitk:4", "pairwise"]:
        cpu, gpu = _cpu_and_gpu(model, x, order=order)
        assert np.array_equal(cpu.view(np.uint32), gpu.view(np.uint32)), order


@needs_gpu
def test_device_batches_are_invariant():
    model = bc.mlp([512, 256, 10], seed=0)
    data = np.random.default_rng(2).standard_normal((300, 512)).astype(np.float32)
    gpu = bc.native(device="cuda")
    ref = gpu.run_batched(model, data, 1)
    for B in [2, 7, 8, 9, 64, 129, 300]:
        assert np.array_equal(gpu.run_batched(model, data, B).view(np.uint32), ref.view(np.uint32)), B


def gpu_formula_bytes(sizes, M, flush=0):
    """The plan of docs/measurement.md on the device: weights (K x N + N per linear layer) + input (M x K0) + two
    activation buffers (M x widest layer) + the cold mode's flush buffer; no padding on the device."""
    weights = sum((k * n + n) * 4 for k, n in zip(sizes[:-1], sizes[1:], strict=False))
    return weights + M * sizes[0] * 4 + 2 * M * max(sizes[1:]) * 4 + flush


@needs_gpu
@pytest.mark.parametrize("M", [1, 8, 100, 1000])
def test_device_peak_equals_prediction_equals_formula(M):
    sizes = [784, 128, 10]
    model = bc.mlp(sizes, seed=0)
    x = np.random.default_rng(0).standard_normal((M, 784)).astype(np.float32)
    quick = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0)
    for cold in (False, True):
        m = bc.native(device="cuda").measure(model, x, quick, cold=cold)
        flush = bc.backends.gpu_model(model, 0).l2_flush_bytes if cold else 0
        assert m.peak_bytes == m.predicted_bytes == gpu_formula_bytes(sizes, M, flush)
        assert m.timing.samples >= 3 and 0 < m.timing.min_ms <= m.timing.median_ms


@needs_gpu
def test_planted_and_real_out_of_memory_are_caught_and_the_search_goes_on():
    sizes = [256, 256]
    model, gpu = bc.mlp(sizes, seed=0), bc.native(device="cuda")
    budget = gpu_formula_bytes(sizes, 1000)
    res = bc.largest_batch(model, gpu, budget_bytes=budget)
    assert res.batch_size == 1000 and res.peak_bytes == budget
    dm = bc.backends.gpu_model(model, 0)
    resident = dm.current_bytes
    dm.memory_limit = budget
    with pytest.raises(bc.OutOfMemoryError):
        gpu.run(model, np.ones((1001, 256), np.float32))
    dm.memory_limit = -1
    assert dm.current_bytes == resident
    # Real memory: a wide input and a narrow output, so each probe is cheap; the answer must then run.
    wide = bc.mlp([16384, 16], seed=0)
    real = bc.largest_batch(wide, gpu, start=1 << 16)
    assert any(not ok for _, ok, _ in real.steps) and not real.capped
    wide_gpu, seq = bc.backends.gpu_model(wide, 0), bc.orders.run_options()
    assert wide_gpu.run_zeros(real.batch_size, seq) == real.peak_bytes
    with pytest.raises(bc.OutOfMemoryError):
        wide_gpu.run_zeros(real.batch_size + 1, seq)
    assert wide_gpu.current_bytes == gpu_formula_bytes([16384, 16], 0)


@needs_gpu
def test_gpu_dot_matches_the_cpu_for_every_order():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(1001).astype(np.float32), rng.standard_normal(1001).astype(np.float32)
    for order in ALL_ORDERS:
        assert np.float32(cu.dot(a, b, 0.5, bc.orders.Order(order))).view(np.uint32) == \
            np.float32(bc.orders.dot(a, b, order=order, c=0.5)).view(np.uint32), order


def test_cuda_device_strings():
    from batchcore import devices

    assert devices.parse("cpu").kind == "cpu"
    assert str(devices.parse("auto")) == ("cuda:0" if devices.gpu_count() else "cpu")
    for bad in ["gpu", "cuda:x", "cpu:1", 3]:
        with pytest.raises(bc.DeviceUnavailableError):
            devices.parse(bad)
    if devices.gpu_count() == 0:
        with pytest.raises(bc.DeviceUnavailableError, match="no GPU|without CUDA"):
            devices.parse("cuda")
        with pytest.raises(bc.DeviceUnavailableError):
            bc.native(device="cuda:0")
    else:
        with pytest.raises(bc.DeviceUnavailableError, match="visible"):
            devices.parse(f"cuda:{devices.gpu_count()}")


@needs_gpu
def test_gpu_sweep_with_every_gpu_backend():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    model = bc.mlp([512, 256, 10], seed=0)
    quick = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=2, target=0.5)
    backends = [bc.torch(device="cuda"), bc.torch(device="cuda", tf32=True), bc.native(device="cuda"),
                bc.native(device="cuda", order="splitk:4")]
    try:
        backends.append(bc.cupy())
    except bc.MissingDependencyError:
        pass
    res = bc.sweep(model, [1, 8, 64, 300], backends, rows=300, timer=quick)
    classes = res.classes()
    assert classes["native[cuda:0:seq]"] == [[1, 8, 64, 300]] and classes["native[cuda:0:splitk:4]"] == [[1, 8, 64, 300]]
    for p in res.points:
        assert p["peak_bytes"] > 0 and p["time_ms"] > 0 and p["max_ulp_vs_exact"] is not None
    assert bc.largest_batch(model, bc.torch(device="cuda"), budget_bytes=50_000_000).batch_size > 1


@needs_gpu
def test_gpu_probe_is_a_ceiling_for_a_device_gemm_and_copy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    ceiling = bc.probe("cuda:0", refresh=True)
    assert ceiling.peak_gflops > 0 and ceiling.bandwidth_gbs > 0 and ceiling.last_level_cache_bytes > 0
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(4096, 4096, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a @ a
    start.record()
    for _ in range(5):
        a @ a
    end.record()
    end.synchronize()
    cublas = 5 * 2 * 4096**3 / (start.elapsed_time(end) * 1e-3) / 1e9
    assert cublas < 1.2 * ceiling.peak_gflops  # fp32 cuBLAS cannot beat the fp32 fma peak
    big = torch.empty(1 << 28, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(big)
    dst.copy_(big)
    start.record()
    dst.copy_(big)
    end.record()
    end.synchronize()
    assert 2 * big.numel() / (start.elapsed_time(end) * 1e-3) / 1e9 < 1.2 * ceiling.bandwidth_gbs


@needs_gpu
def test_sm_clock_reads_a_clock_near_the_default_during_work():
    model = bc.mlp([1024, 1024], seed=0)
    core = bc.backends.gpu_model(model, 0)
    clock = cu.SmClock(0)
    assert 0.3 < clock.default_ghz < 4.0
    clock.mark_start(0)
    for _ in range(50):
        core.run_zeros(4096, bc.orders.run_options())
    clock.mark_stop(0)
    ghz = clock.ghz(0)
    assert 0.2 * clock.default_ghz < ghz < 1.5 * clock.default_ghz
