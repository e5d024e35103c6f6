"""The CUDA extension: it must be compiled wherever nvcc is found, and on a GPU its reference kernel
gives the CPU's bits for every order and precision. GPU tests skip with a reason elsewhere."""

import shutil

import numpy as np
import pytest

import batchcore as bc
from batchcore.info import cuda_module

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
    cpu = m.run(x, order=order, precision=precision)[0]
    gpu = cu.linear_reference(x, W, b, order, precision)
    assert np.array_equal(cpu.view(np.uint32), gpu.view(np.uint32))
