"""The backends: labels and settings, run_batched as an evaluation loop runs (batch by batch), cold
copies counted by their rule, and a measurement's record."""

import numpy as np
import pytest

import batchcore as bc
from batchcore.backends import cold_copies, cold_input_bytes

QUICK = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)


@pytest.fixture(scope="module")
def model():
    return bc.mlp([24, 16, 5], activation="gelu", head="softmax", seed=3)


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(4).standard_normal((11, 24), dtype=np.float32)


def backends():
    found = [bc.native(), bc.native(order="pairwise", precision="bf16"), bc.numpy()]
    try:
        found.append(bc.torch(threads=1, measure_memory=False))
    except bc.MissingDependencyError:
        pass
    return found


def test_labels_and_settings_name_the_configuration():
    assert bc.native().label == "native[seq]"
    assert bc.native(order="chunk:64", precision="bf16").label == "native[chunk:64,bf16]"
    assert bc.native(policy="library-like").label == "native[library-like]"
    s = bc.native(threads=1).settings()
    assert s["threads"] == 1 and s["order"] == "seq" and s["device"] == "cpu" and s["simd"] in bc._core.simd_levels()
    assert bc.numpy().settings()["order"] == "library"


@pytest.mark.parametrize("batch_size", [1, 3, 4, 11, 50])
def test_run_batched_is_the_concatenation_of_consecutive_batches(model, data, batch_size):
    for backend in backends():
        by_hand = np.concatenate([backend.run(model, data[i:i + batch_size]) for i in range(0, len(data), batch_size)])
        got = backend.run_batched(model, data, batch_size)
        assert np.array_equal(got.view(np.uint32), by_hand.view(np.uint32)), backend.label


def test_cold_copies_hold_twice_the_last_level_cache():
    from batchcore.info import last_level_cache_bytes

    if not last_level_cache_bytes():
        pytest.skip("the system does not report its last-level cache")
    for nbytes in (64, 4096, 10**6, cold_input_bytes(), 10 * cold_input_bytes()):
        n = cold_copies(nbytes)
        assert n >= 2 and n * nbytes >= cold_input_bytes() and (n == 2 or (n - 1) * nbytes < cold_input_bytes())


def test_a_measurement_records_time_memory_and_how(model, data):
    native = bc.native(threads=1).measure(model, data, QUICK)
    assert native.peak_bytes == native.predicted_bytes > 0 and native.memory.endswith("(exact)")
    assert native.timing.samples >= 3 and native.timing.median_ms > 0 and "C++ core" in native.clock
    numpy = bc.numpy().measure(model, data, QUICK)
    assert numpy.peak_bytes is None and "Python call" in numpy.clock


def test_torch_skips_its_memory_child_when_asked(model, data):
    pytest.importorskip("torch")
    skipped = bc.torch(threads=1).measure(model, data, QUICK, memory=False)
    assert skipped.peak_bytes is None and skipped.memory is None
    off = bc.torch(threads=1, measure_memory=False).measure(model, data, QUICK)
    assert off.peak_bytes is None and "measure_memory=False" in off.memory


# -- what a backend builds from a model: made once, shared, gone with the model -----------------------


def test_the_core_model_is_built_once_shared_and_dropped_with_its_model():
    import gc

    from batchcore.backends import native_core as native_module

    model = bc.mlp([20, 10], seed=5)
    x = np.ones((2, 20), np.float32)
    seq, pairwise = bc.native(), bc.native(order="pairwise")
    seq.run(model, x)
    pairwise.run(model, x)
    assert seq.core_model(model) is pairwise.core_model(model)  # one packed copy for every native backend
    assert model.__dict__.keys() == {"layers", "input_width", "name", "source_module", "source_framework",
                                   "output_width"}  # plain data
    before = len(native_module._CPU_MODELS)
    del model
    gc.collect()
    assert len(native_module._CPU_MODELS) == before - 1


def test_the_torch_backend_runs_the_users_module_itself_and_builds_one_for_mlp():
    torch = pytest.importorskip("torch")
    import gc

    from batchcore.backends import pytorch as torch_backend

    module = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ReLU()).eval()
    read = bc.from_torch(module)
    backend = bc.torch(threads=1, measure_memory=False)
    assert backend.module(read) is module and read.source_module is module
    made = bc.mlp([6, 3], seed=0)
    built = backend.module(made)
    assert isinstance(built, torch.nn.Sequential) and backend.module(made) is built  # built once
    assert np.array_equal(built[0].weight.detach().numpy(), made.layers[0].params["weight"])
    before = len(torch_backend._MODULES)
    del made, built
    gc.collect()
    assert len(torch_backend._MODULES) == before - 1


def test_a_model_is_never_changed_by_running_it(model, data):
    layers = model.layers
    for backend in backends():
        backend.run(model, data)
    assert model.layers is layers and isinstance(layers, tuple)
