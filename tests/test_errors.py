"""Bad input raises the batchcore exception that names the problem; nothing crashes."""

import numpy as np
import pytest

import batchcore as bc


@pytest.fixture(scope="module")
def model():
    return bc.mlp([16, 8, 4], seed=0)


def test_hierarchy():
    for exc in (bc.ShapeError, bc.DTypeError, bc.NonFiniteError, bc.OrderError, bc.UnsupportedLayerError,
                bc.DeviceUnavailableError, bc.OutOfMemoryError, bc.MissingDependencyError):
        assert issubclass(exc, bc.BatchcoreError)


BAD_INPUTS = [
    (lambda: np.ones((3, 15), np.float32), bc.ShapeError, "columns"),
    (lambda: np.ones(16, np.float32), bc.ShapeError, "2-D"),
    (lambda: np.ones((0, 16), np.float32), bc.ShapeError, "empty"),
    (lambda: np.ones((3, 16), np.float64), bc.DTypeError, "float32"),
    (lambda: np.ones((3, 16), np.int32), bc.DTypeError, "float32"),
    (lambda: np.asfortranarray(np.ones((3, 16), np.float32)), bc.DTypeError, "contiguous"),
    (lambda: np.ones((3, 32), np.float32)[:, ::2], bc.DTypeError, "contiguous"),
    (lambda: np.array([[np.nan] * 16], np.float32), bc.NonFiniteError, "NaN"),
    (lambda: np.array([[1] * 15 + [np.inf]], np.float32), bc.NonFiniteError, "column 15"),
    (lambda: [[1.0] * 16], bc.DTypeError, "numpy"),
]


@pytest.mark.parametrize("make_x, exc, words", BAD_INPUTS)
@pytest.mark.parametrize("backend", ["native", "numpy", "torch"])
def test_bad_inputs(model, make_x, exc, words, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch is not installed")
    b = {"native": bc.native, "numpy": bc.numpy, "torch": bc.torch}[backend]()
    with pytest.raises(exc, match=words):
        b.run(model, make_x())


def test_native_core_checks_without_the_python_layer(model):
    core = bc.backends.cpu_model(model)
    with pytest.raises(bc.NonFiniteError, match="row 1, column 2"):
        x = np.ones((2, 16), np.float32)
        x[1, 2] = np.nan
        core.run(x)
    big = np.ones((20000, 16), np.float32)  # large enough for the check to run on several threads
    for row, col, value in [(19999, 15, np.inf), (12345, 0, -np.inf), (9999, 7, np.nan)]:
        x = big.copy()
        x[row, col] = value
        with pytest.raises(bc.NonFiniteError, match=f"row {row}, column {col}"):
            core.run(x, bc.orders.run_options(threads=3))
    with pytest.raises(bc.DTypeError):
        core.run(np.ones((2, 16), np.float64))
    with pytest.raises(bc.ShapeError):
        core.run_batched(np.ones((2, 16), np.float32), 0)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(order="splitk:0"), bc.OrderError),
    (dict(order="lanes:3"), bc.OrderError),
    (dict(order="chunk:-1"), bc.OrderError),
    (dict(order="nonsense"), bc.OrderError),
    (dict(precision="fp64"), bc.OrderError),
    (dict(policy="fastest"), bc.OrderError),
    (dict(threads=0), bc.ArgumentError),
    (dict(device="cuda"), bc.DeviceUnavailableError),
    (dict(simd="neon"), bc.DeviceUnavailableError),
])
def test_bad_backend_settings(kwargs, exc):
    with pytest.raises(exc):
        bc.native(**kwargs)


def test_bad_models():
    with pytest.raises(bc.ShapeError):
        bc.mlp([10])
    with pytest.raises(bc.ShapeError):
        bc.mlp([10, 0, 3])
    with pytest.raises(bc.UnsupportedLayerError, match="swish"):
        bc.mlp([10, 3], activation="swish")
    with pytest.raises(bc.ShapeError, match="empty"):  # K = 0
        from batchcore import _core

        _core.Model(4).add_linear(np.ones((3, 0), np.float32).reshape(3, 0), None)


def test_bad_sweep_arguments(model):
    with pytest.raises(bc.ShapeError):
        bc.sweep(model, [], [bc.native()])
    with pytest.raises(bc.ShapeError):
        bc.sweep(model, [0, 2], [bc.native()])
    with pytest.raises(bc.ShapeError):
        bc.sweep(model, [1], [bc.native()], labels=np.zeros(3, int), rows=4)
    with pytest.raises(bc.NonFiniteError):
        bc.sweep(model, [1], [bc.native()], data=np.full((4, 16), np.nan, np.float32))


def test_absent_gpu_is_a_clear_error():
    if bc.info()["gpus"]:
        pytest.skip("a GPU is present")
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        with pytest.raises(bc.DeviceUnavailableError):
            bc.torch(device="cuda")
    with pytest.raises((bc.DeviceUnavailableError, bc.MissingDependencyError)):
        bc.cupy()


def test_cold_timing_without_a_known_cache_size_says_why(model, monkeypatch):
    import batchcore.backends.base

    monkeypatch.setattr(batchcore.backends.base, "last_level_cache_bytes", lambda: None)
    x = np.ones((2, 16), np.float32)
    for backend in (bc.native(), bc.numpy()):
        with pytest.raises(bc.ArgumentError, match="last-level cache"):
            backend.measure(model, x, cold=True)


@pytest.mark.parametrize("make_x, exc, words", BAD_INPUTS)
def test_the_same_bad_input_raises_the_same_class_at_every_entry(model, make_x, exc, words):
    """Every way in: a backend's run, run_batched and measure, the core's model without the Python layer
    (its bindings check on their own), and a sweep's data."""
    quick = bc.Timer(min_samples=1, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
    native = bc.native()
    entries = {
        "run": lambda x: native.run(model, x),
        "run_batched": lambda x: native.run_batched(model, x, 2),
        "measure": lambda x: native.measure(model, x, quick),
        "numpy measure": lambda x: bc.numpy().measure(model, x, quick),
        "core run": lambda x: bc.backends.cpu_model(model).run(x),
        "core run_batched": lambda x: bc.backends.cpu_model(model).run_batched(x, 2),
        "sweep data": lambda x: bc.sweep(model, [1], [native], data=x, timer=quick, ceilings=False),
    }
    for name, entry in entries.items():
        try:
            entry(make_x())
        except exc as e:  # the same check, hence the same words, at every entry
            assert words in str(e), (name, str(e))
        else:
            pytest.fail(f"{name} accepted the bad input")


@pytest.mark.parametrize("param, exc", [
    (np.ones((4, 16)), bc.DTypeError), (np.ones((4, 16), np.float16), bc.DTypeError),
    (np.ones((4, 15), np.float32), bc.ShapeError), (np.ones(16, np.float32), bc.ShapeError),
    (np.ones((0, 16), np.float32), bc.ShapeError), (None, bc.ShapeError),
])
def test_a_bad_weight_raises_what_the_same_bad_input_raises(param, exc):
    with pytest.raises(exc):
        bc.Model([bc.Layer("linear", {"weight": param, "bias": None})], 16)
