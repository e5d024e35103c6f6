"""NumPy's pass over a graph model (batchcore/backends/array_graph.py): each pooling geometry against torch's
own layer (the graph's definitions are torch's), and a sweep with bc.numpy() equal to its plain loop."""

import numpy as np
import pytest

import batchcore as bc
from batchcore.model.graph import GraphModel, GraphNode

torch = pytest.importorskip("torch")

POOLS = [
    ("avg_pool2d", dict(kernel=[3, 2], stride=[2, 1], padding=[1, 1], ceil_mode=True, count_include_pad=True,
                        divisor_override=0)),
    ("avg_pool2d", dict(kernel=[3, 3], stride=[2, 2], padding=[1, 0], ceil_mode=False, count_include_pad=False,
                        divisor_override=0)),
    ("avg_pool2d", dict(kernel=[2, 2], stride=[1, 3], padding=[0, 1], ceil_mode=True, count_include_pad=True,
                        divisor_override=3)),
    ("avg_pool2d", dict(kernel=[2, 3], stride=[2, 2], padding=[1, 1], ceil_mode=True, count_include_pad=False,
                        divisor_override=0)),
    ("max_pool2d", dict(kernel=[3, 2], stride=[2, 2], padding=[1, 1], dilation=[2, 1], ceil_mode=True)),
]


def torch_pool(kind, p):
    if kind == "max_pool2d":
        return torch.nn.MaxPool2d(p["kernel"], p["stride"], p["padding"], p["dilation"], ceil_mode=p["ceil_mode"])
    return torch.nn.AvgPool2d(p["kernel"], p["stride"], p["padding"], p["ceil_mode"], p["count_include_pad"],
                              p["divisor_override"] or None)


@pytest.mark.parametrize("kind, params", POOLS)
def test_pools_equal_torch(kind, params):
    x = np.random.default_rng(0).standard_normal((3, 2, 7, 8)).astype(np.float32)
    want = torch_pool(kind, params)(torch.from_numpy(x)).numpy()
    model = GraphModel([GraphNode("input", (), {}, (2, 7, 8)), GraphNode(kind, (0,), params, want.shape[1:])], 1)
    np.testing.assert_allclose(bc.numpy().run(model, x), want, rtol=1e-6, atol=1e-7)


def test_a_sweep_with_numpy_on_a_cnn_equals_its_plain_loop():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5)).eval()
    x = np.random.default_rng(3).standard_normal((12, 1, 8, 8)).astype(np.float32)
    graph = bc.from_torch(net, input_shape=(1, 8, 8))
    res = bc.sweep(graph, data=x, batch_sizes=[1, 3, 12], backends=[bc.numpy()], rounds=1, progress=False,
                   timer=bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5))
    b1 = np.concatenate([bc.numpy().run(graph, x[i:i + 1]) for i in range(12)])
    for p in res.points:
        B = p["batch_size"]
        got = np.concatenate([bc.numpy().run(graph, x[i:i + B]) for i in range(0, 12, B)])
        assert p["bitwise_equal_frac"] == float((got.view(np.uint32) == b1.view(np.uint32)).mean())
    with torch.no_grad():
        np.testing.assert_allclose(b1, net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
