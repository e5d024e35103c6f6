"""Native memory: the tracked peak equals the planner's prediction, byte for byte, and both equal the
the formula of docs/measurement.md recomputed here; a byte budget turns into OutOfMemoryError with nothing leaked."""

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
    panel_bytes = sum(-(-n // 32) * (k + 1) * 32 * 4 for k, n in zip(sizes[:-1], sizes[1:], strict=False))
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
    native = bc.backends.cpu_model(model)
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
    native, backend = bc.backends.cpu_model(model), bc.native()
    x = np.ones((50, 300), np.float32)
    backend.run(model, x)
    cached = native.cached_bytes
    assert cached >= formula_bytes([300, 200], 50) - formula_bytes([300, 200], 0)  # input + activations
    backend.run(model, x)
    assert native.cached_bytes == cached  # the same blocks were reused, none added
    native.release_cached()
    assert native.cached_bytes == 0


# -- the largest batch that fits ---------------------------------------------------------------------


@pytest.mark.parametrize("sizes, budget", [([784, 128, 10], 10_000_000), ([33, 1], 200_000), ([512, 64], 3_000_000)])
def test_largest_batch_under_a_budget_is_the_formulas_largest(sizes, budget):
    model, backend = bc.mlp(sizes, seed=0), bc.native(threads=1)
    # formula_bytes is affine in M: solve it for the budget directly.
    fixed, per_row = formula_bytes(sizes, 0), formula_bytes(sizes, 1) - formula_bytes(sizes, 0)
    expected = (budget - fixed) // per_row
    assert formula_bytes(sizes, expected) <= budget < formula_bytes(sizes, expected + 1)
    backend.run(model, np.ones((1, sizes[0]), np.float32))
    resident = bc.backends.cpu_model(model).current_bytes
    res = bc.largest_batch(model, backend, budget_bytes=budget)
    assert res.batch_size == expected and res.peak_bytes == formula_bytes(sizes, expected) and not res.capped
    failed = [b for b, ok, _ in res.steps if not ok]
    assert failed and min(failed) == expected + 1  # out-of-memory runs were caught and the search went on
    assert len(res.steps) <= 2 * int(np.ceil(np.log2(expected + 1))) + 2
    assert bc.backends.cpu_model(model).current_bytes == resident and bc.backends.cpu_model(model).memory_limit == -1


def test_largest_batch_stops_at_max_batch_and_refuses_what_it_cannot_bound():
    model = bc.mlp([16, 8], seed=0)
    res = bc.largest_batch(model, bc.native(), budget_bytes=10**9, max_batch=100)
    assert res.batch_size == 100 and res.capped
    with pytest.raises(bc.OutOfMemoryError, match="not even 1"):
        bc.largest_batch(model, bc.native(), budget_bytes=16)
    with pytest.raises(bc.ArgumentError, match="budget_bytes"):
        bc.largest_batch(model, bc.native())
    with pytest.raises(bc.ArgumentError, match="cannot bound"):
        bc.largest_batch(model, bc.numpy(), budget_bytes=10**6)
    with pytest.raises(bc.ArgumentError):
        bc.largest_batch(model, bc.native(), budget_bytes=10**6, start=0)


class PlantedOom(bc.backends.Backend):
    """A device whose passes run out of memory above `limit` rows (raised inside the pass, as a real
    out-of-memory error is), counting how many passes it saw."""

    name = "planted"

    def __init__(self, limit):
        self.limit, self.passes = limit, []

    def peak_bytes_if_fits(self, model, batch_size, budget_bytes=None):
        self.passes.append(batch_size)
        try:
            if batch_size > self.limit:
                raise bc.OutOfMemoryError(f"{batch_size} rows")
            return 1000 * batch_size
        except bc.OutOfMemoryError:
            return None


@pytest.mark.parametrize("limit", [1, 2, 3, 37, 64, 1000, 4097])
def test_largest_batch_search_finds_a_planted_limit(limit):
    dev = PlantedOom(limit)
    res = bc.largest_batch(bc.mlp([4, 2]), dev)
    assert res.batch_size == limit and res.peak_bytes == 1000 * limit
    doublings = int(np.floor(np.log2(limit))) + 2  # 1, 2, 4, ... past the limit
    assert dev.passes[:doublings] == [2**i for i in range(doublings)]
    assert len(dev.passes) <= 2 * doublings


@pytest.mark.parametrize("M, K", [(1, 784), (64, 784), (3000, 512)])
def test_cold_cpu_runs_rotate_tracked_copies_of_the_input_and_keep_the_bits(M, K):
    from batchcore.info import last_level_cache_bytes

    llc = last_level_cache_bytes()
    if not llc:
        pytest.skip("the system does not report its last-level cache")
    model = bc.mlp([K, 128, 10], seed=1)
    core = bc.backends.cpu_model(model)
    x = np.random.default_rng(M).standard_normal((M, K)).astype(np.float32)
    quick = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5).policy()
    y_hot, _, peak_hot, planned_hot = core.measure(x, quick)
    y_cold, summary, peak_cold, planned_cold = core.measure(x, quick, cold_bytes=2 * llc)
    assert np.array_equal(y_hot.view(np.uint32), y_cold.view(np.uint32))
    copies = max(2, -(-2 * llc // (M * K * 4)))  # enough copies of x to hold twice the cache, at least 2
    assert peak_hot == planned_hot and peak_cold == planned_cold == planned_hot + copies * M * K * 4
    assert copies * M * K * 4 >= 2 * llc
    assert core.plan_bytes(M, cold_bytes=2 * llc) == planned_cold


def test_cold_timing_through_the_backends_and_sweep():
    model = bc.mlp([32, 16], seed=0)
    quick = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
    seen = []
    numpy_backend = bc.numpy()
    forward = numpy_backend._forward
    numpy_backend._forward = lambda m, x: (seen.append(x.ctypes.data), forward(m, x))[1]
    m = numpy_backend.measure(model, np.ones((4, 32), np.float32), quick, cold=True)
    assert "cold" in m.clock and len(set(seen)) >= 2  # the passes read different copies
    res = bc.sweep(model, [1, 4], [bc.native()], rows=8, timer=quick, cold=True, ceilings=False)
    assert all(p["peak_bytes"] == p["predicted_bytes"] for p in res.points)
