"""Native memory: the tracked peak equals the planner's prediction, byte for byte, and both equal the
DESIGN.md formula recomputed here; a byte budget turns into OutOfMemoryError with nothing leaked."""

import numpy as np
import pytest

import batchcore as bc


def padded(width):
    """Floats between rows in the core's buffers: whole 64-byte lines (16 floats), an odd count of them."""
    lines = -(-width // 16)
    return 16 * (lines if lines % 2 else lines + 1)


def formula_bytes(sizes, M, order="seq", threads=1):
    """weights (32-column panels, K x 32 floats + 32 bias floats each) + input copy (fp32 models that
    start with a linear layer read the caller's rows directly unless they are a multiple of 2 KiB
    apart) + two activation buffers of the widest layer, rows padded + workspace: lanes:W, threads x W x
    12 x 32 floats."""
    panel_bytes = sum(-(-n // 32) * (k + 1) * 32 * 4 for k, n in zip(sizes[:-1], sizes[1:]))
    workspace = threads * int(order.split(":")[1]) * 12 * 32 * 4 if order.startswith("lanes") else 0
    input_copy = M * padded(sizes[0]) * 4 if sizes[0] % 512 == 0 else 0
    return panel_bytes + input_copy + 2 * M * padded(max(sizes[1:])) * 4 + workspace


@pytest.mark.parametrize("sizes", [[784, 128, 10], [33, 1], [5, 100, 7, 64], [1024, 48]])
@pytest.mark.parametrize("M", [1, 3, 64, 257])
@pytest.mark.parametrize("order", ["seq", "lanes:16"])
def test_peak_equals_prediction_equals_formula(sizes, M, order):
    model = bc.mlp(sizes, seed=1)
    backend = bc.native(order=order, threads=2)
    x = np.random.default_rng(0).standard_normal((M, sizes[0])).astype(np.float32)
    t = backend.measure(model, x, bc.Timer(min_samples=1, min_time_s=0, warmup_s=0))
    assert t.peak_bytes == t.predicted_bytes == backend.plan_bytes(model, M) == formula_bytes(sizes, M, order, 2)


def test_budget_raises_out_of_memory_and_frees_everything():
    model = bc.mlp([256, 256], seed=0)
    native = model.native_model()
    backend = bc.native()
    backend.run(model, np.ones((1, 256), np.float32))
    resident = native.current_bytes  # the packed weights
    native.memory_limit = backend.plan_bytes(model, 100)
    backend.run(model, np.ones((100, 256), np.float32))  # fits exactly
    with pytest.raises(bc.OutOfMemoryError, match="budget"):
        backend.run(model, np.ones((101, 256), np.float32))
    assert native.current_bytes == resident  # nothing leaked by the failed run
    native.memory_limit = -1
    backend.run(model, np.ones((101, 256), np.float32))


def test_freed_run_buffers_are_cached_for_the_next_run_and_can_be_released():
    model = bc.mlp([300, 200], seed=0)
    native, backend = model.native_model(), bc.native()
    x = np.ones((50, 300), np.float32)
    backend.run(model, x)
    cached = native.cached_bytes
    assert cached >= formula_bytes([300, 200], 50) - formula_bytes([300, 200], 0)  # input + activations
    backend.run(model, x)
    assert native.cached_bytes == cached  # the same blocks were reused, none added
    native.release_cached()
    assert native.cached_bytes == 0
