"""JAX as a backend: functions of parameters (an MLP, a CNN, a pytree of outputs) swept with bc.jax(), jitted
and op by op; every figure recomputed here with JAX's own plain loop (``jax.jit(fn)(params, x[i:i + B])``);
compilation recorded apart from the timing; bad input named."""

import pickle

import numpy as np
import pytest

import batchcore as bc
from point_checks import check_point

jax = pytest.importorskip("jax")
jnp = jax.numpy
FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
SIZES = [1, 3, 8, 40]


def mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": (rng.standard_normal((96, 256)) / 10).astype(np.float32), "b1": rng.standard_normal(256).astype(np.float32),
            "w2": (rng.standard_normal((256, 10)) / 16).astype(np.float32), "b2": np.zeros(10, np.float32)}


def mlp(p, x):
    return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def cnn_params(seed=1):
    rng = np.random.default_rng(seed)
    return {"w": (rng.standard_normal((6, 1, 3, 3)) / 3).astype(np.float32),
            "v": (rng.standard_normal((96, 10)) / 9).astype(np.float32)}


def cnn(p, x):
    y = jax.nn.relu(jax.lax.conv_general_dilated(x, p["w"], (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")))
    y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return y.reshape(y.shape[0], -1) @ p["v"]


def plain_loop(fn, params, x, B, jit=True):
    f = jax.jit(fn) if jit else fn  # the rows as JAX arrays: numpy's own @ would compute an eager MLP otherwise
    return np.concatenate([np.asarray(f(params, jnp.asarray(x[i:i + B]))) for i in range(0, len(x), B)])


@pytest.mark.parametrize("fn, params, shape", [(mlp, mlp_params(), (96,)), (cnn, cnn_params(), (1, 8, 8))])
@pytest.mark.parametrize("jit", [True, False])
def test_a_sweep_on_jax_equals_its_own_plain_loop(fn, params, shape, jit):
    x = np.random.default_rng(2).standard_normal((40, *shape)).astype(np.float32)
    labels = np.random.default_rng(3).integers(0, 10, 40)
    res = bc.sweep(bc.jax_model(fn, params), data=x, labels=labels, batch_sizes=SIZES, backends=[bc.jax(jit=jit)],
                   timer=FAST, rounds=1, progress=False)
    per_b = {B: plain_loop(fn, params, x, B, jit) for B in SIZES}
    for p in res.points:
        got, b1 = per_b[p["batch_size"]], per_b[1]
        assert [(o["format"], o["shape"]) for o in p["outputs"]] == [("fp32", [40, 10])]
        check_point(p, got, b1, labels)
        assert p["first_call_ms"] > 0 and "no peak counter" in p["memory_method"]
        assert p["settings"]["jit"] is jit and p["settings"]["jax_version"] == jax.__version__


def test_each_batch_size_compiles_once_and_the_compilation_is_recorded_apart():
    """A jitted function traced once per batch shape: the sweep's output and timing phases share it, and
    the first call (where the trace happens) is the one recorded as first_call_ms."""
    traces = []

    def counted(p, x):
        traces.append(x.shape)  # runs only while JAX traces
        return mlp(p, x)

    x = np.random.default_rng(4).standard_normal((16, 96)).astype(np.float32)
    res = bc.sweep(bc.jax_model(counted, mlp_params()), data=x, batch_sizes=[1, 4, 16], backends=[bc.jax()], timer=FAST,
                   rounds=1, progress=False)
    assert sorted(traces) == [(1, 96), (4, 96), (16, 96)]
    assert all(p["first_call_ms"] > 0 for p in res.points)


def test_outputs_of_a_pytree_in_their_own_formats_and_inputs_by_keyword():
    params = {"w": np.ones((3, 2), jnp.bfloat16)}

    def two_heads(p, a, ids):
        h = a @ p["w"]
        return {"logits": h, "ids": ids * 2}

    a = np.random.default_rng(5).standard_normal((6, 3)).astype(jnp.bfloat16)
    ids = np.arange(12, dtype=np.int32).reshape(6, 2)
    res = bc.sweep(bc.jax_model(two_heads, params), data={"a": a, "ids": ids}, batch_sizes=[1, 3], backends=[bc.jax()],
                   timer=FAST, rounds=1, progress=False)
    assert [(o["name"], o["format"]) for o in res.points[0]["outputs"]] == [("output['ids']", "int32"),
                                                                           ("output['logits']", "bf16")]
    got = bc.jax().run_module(bc.jax_model(two_heads, params), {"a": a, "ids": ids}, 3)
    assert np.array_equal(got[0].values, ids * 2)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: bc.sweep(bc.jax_model(mlp, mlp_params()), data=np.ones((4, 96)), batch_sizes=[1], backends=[bc.jax()]),
     bc.DTypeError, "data is float64 but mlp takes float32"),
    (lambda: bc.jax_model(mlp, {"a": np.ones(2, np.float32), "b": np.ones(2, np.float16)}), bc.DTypeError, "mix floating"),
    (lambda: bc.jax_model("mlp", {}), bc.ArgumentError, "fn must be a function"),
    (lambda: bc.jax(device="cuda"), bc.DeviceUnavailableError, "cuda:0 is not available|XLA's CPU"),
    (lambda: bc.jax(jit="yes"), bc.ArgumentError, "jit must be True or False"),
    (lambda: bc.sweep(bc.jax_model(mlp, mlp_params()), data=np.ones((4, 5), np.float32), batch_sizes=[1],
                      backends=[bc.jax()]), bc.ModuleError, "mlp raised"),
    (lambda: bc.sweep(bc.jax_model(mlp, mlp_params()), data=np.ones((4, 96), np.float32), batch_sizes=[1],
                      backends=[bc.native()]), bc.ArgumentError, "jax module batchcore runs as it is"),
    (lambda: bc.jax().run(bc.mlp([4, 2], seed=0), np.ones((1, 4), np.float32)), bc.ArgumentError, "runs JAX models"),
])
def test_bad_input_names_the_problem(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_a_backend_travels_by_its_settings():
    b = bc.jax(jit=False)
    again = pickle.loads(pickle.dumps(b))
    assert again.label == b.label == "jax[cpu,eager]" and again.settings() == b.settings()
