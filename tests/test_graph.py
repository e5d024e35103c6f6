"""The core's Graph: its buffer plan worked out by hand, the non-GEMM operations' defined edge cases
(signed zeros, windows in the padding, broadcasting against constants), and its argument checks."""

import numpy as np
import pytest

import batchcore as bc
import graph_reference as ref
from batchcore import _core


def packed_bytes(N, K):
    """What packing an N x K linear layer holds: panels of 32 columns, K weights and a bias each."""
    return -(-N // 32) * 32 * (K + 1) * 4


def seq(threads=1):
    return bc.orders.run_options("seq", threads=threads)


def test_plan_of_a_chain_writes_activations_in_place():
    g = _core.Graph([4])
    h = g.add_linear(0, np.ones((8, 4), np.float32), None)
    r = g.add_activation(h, "relu")  # h dies here: relu writes into h's buffer
    g.set_output(g.add_linear(r, np.ones((2, 8), np.float32), None))
    for M in (1, 7):
        want = packed_bytes(8, 4) + packed_bytes(2, 8) + 4 * M * 8 + 4 * M * 2
        x = np.ones((M, 4), np.float32)
        assert g.run(x, seq())[1:] == (want, want)
        assert g.plan_bytes(M, seq()) == want


def test_plan_of_a_residual_keeps_the_branch_alive():
    g = _core.Graph([4])
    h = g.add_linear(0, np.ones((4, 4), np.float32), None)
    r = g.add_activation(h, "tanh")      # h is still read below: tanh gets its own buffer
    s = g.add_binary(h, r, "add")        # both die here: the sum overwrites h's buffer
    v = g.add_reshape(s, [2, 2])         # a view
    g.set_output(g.add_permute(v, [1, 0]))
    M = 3
    # At most two buffers live at once: h and r at the sum; r goes after it, before the permuted copy
    want = packed_bytes(4, 4) + 2 * 4 * M * 4
    assert g.run(np.ones((M, 4), np.float32), seq())[1:] == (want, want)


def test_plan_counts_lanes_and_rounding_workspaces():
    g = _core.Graph([3, 5])
    g.set_output(g.add_linear(0, np.ones((2, 5), np.float32), np.zeros(2, np.float32)))
    M, x = 4, np.ones((4, 3, 5), np.float32)
    lanes = bc.orders.run_options("lanes:8", threads=2)
    lanes_bytes = 2 * 8 * 12 * 32 * 4  # threads x W x the largest row block x the panel width
    assert g.run(x, lanes)[1] == packed_bytes(2, 5) + lanes_bytes + 4 * M * 3 * 2
    bf16 = bc.orders.run_options("seq", "bf16")
    assert g.run(x, bf16)[1] == packed_bytes(2, 5) + 4 * M * 3 * 2 + 4 * M * 3 * 5  # the rounded input copy


def test_max_pool_keeps_the_first_of_equal_values():
    g = _core.Graph([1, 1, 2])
    g.set_output(g.add_max_pool2d(0, (1, 2), (1, 2)))
    got = g.run(np.array([[[[-0.0, 0.0]]], [[[0.0, -0.0]]]], np.float32), seq())[0].ravel()
    assert [np.signbit(v) for v in got] == [True, False]


def test_avg_pool_sums_from_the_first_tap_and_ignores_windows_in_the_padding():
    x = np.full((1, 1, 3, 3), -0.0, np.float32)
    g = _core.Graph([1, 3, 3])
    g.set_output(g.add_avg_pool2d(0, (2, 2), (2, 2), padding=(1, 1), ceil_mode=True))
    got = g.run(x, seq())[0][0, 0]
    assert np.signbit(got).all()  # no +0 term: a window of -0 averages to -0
    want = ref.avg_pool2d(x[0], (2, 2), (2, 2), (1, 1), True, True, 0)
    assert got.tobytes() == want[0].tobytes()


@pytest.mark.parametrize("geometry", [
    dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=True, divisor_override=0),
    dict(kernel=(3, 3), stride=(2, 2), padding=(1, 0), ceil_mode=False, count_include_pad=False, divisor_override=0),
    dict(kernel=(2, 2), stride=(1, 3), padding=(0, 1), ceil_mode=True, count_include_pad=True, divisor_override=3),
])
def test_avg_pool_matches_the_definition_and_torch(geometry):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8)).astype(np.float32)
    g = _core.Graph([3, 7, 8])
    g.set_output(g.add_avg_pool2d(0, **geometry))
    got = g.run(x, seq())[0]
    want = np.stack([ref.avg_pool2d(s, *geometry.values()) for s in x])
    assert got.tobytes() == want.tobytes()
    pool = torch.nn.AvgPool2d(geometry["kernel"], geometry["stride"], geometry["padding"], geometry["ceil_mode"],
                              geometry["count_include_pad"], geometry["divisor_override"] or None)
    assert np.allclose(got, pool(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=1e-7)


def test_max_and_adaptive_pools_match_the_definition_and_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 2, 9, 7)).astype(np.float32)
    g = _core.Graph([2, 9, 7])
    m = g.add_max_pool2d(0, (3, 2), (2, 2), padding=(1, 1), dilation=(2, 1), ceil_mode=True)
    g.set_output(m)
    got = g.run(x, seq())[0]
    assert got.tobytes() == np.stack([ref.max_pool2d(s, (3, 2), (2, 2), (1, 1), (2, 1), True) for s in x]).tobytes()
    pool = torch.nn.MaxPool2d((3, 2), (2, 2), (1, 1), (2, 1), ceil_mode=True)
    assert np.array_equal(got, pool(torch.from_numpy(x)).numpy())
    g = _core.Graph([2, 9, 7])
    g.set_output(g.add_adaptive_avg_pool2d(0, (4, 3)))
    got = g.run(x, seq())[0]
    assert got.tobytes() == np.stack([ref.adaptive_avg_pool2d(s, (4, 3)) for s in x]).tobytes()
    want = torch.nn.AdaptiveAvgPool2d((4, 3))(torch.from_numpy(x)).numpy()
    assert np.allclose(got, want, rtol=1e-6, atol=1e-7)


def test_broadcasting_against_constants_and_softmax_along_a_middle_dimension():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    c = rng.standard_normal((5, 1)).astype(np.float32)
    g = _core.Graph([4, 5, 2])
    a = g.add_binary(g.add_constant(c), 0, "div")  # constant first: c / x
    b = g.add_binary(a, g.add_constant(np.array(3.0, np.float32)), "sub")
    g.set_output(g.add_softmax(b, 1))
    got = g.run(x, seq())[0]
    with np.errstate(all="ignore"):
        pre = (c / x).astype(np.float32) - np.float32(3.0)
    want = np.moveaxis(ref.row_function(np.moveaxis(pre, 2, -1), "softmax"), -1, 2)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("build, pattern", [
    (lambda g: g.add_linear(0, np.ones((2, 3), np.float32), None), "takes 3 features"),
    (lambda g: g.add_softmax(0, 3), "dimension 3"),
    (lambda g: g.add_permute(0, [0, 0, 1]), "permutation"),
    (lambda g: g.add_reshape(0, [5, 5]), "cannot make"),
    (lambda g: g.add_binary(0, g.add_constant(np.ones(3, np.float32)), "add"), "do not broadcast"),
    (lambda g: g.add_activation(g.add_constant(np.ones(2, np.float32)), "relu"), "constant"),
    (lambda g: g.add_max_pool2d(0, (3, 3), (1, 1), padding=(2, 2)), "at most half"),
    (lambda g: g.add_activation(9, "relu"), "does not exist"),
    (lambda g: g.add_conv2d(0, np.ones((1, 3, 2, 2), np.float32), None), "takes samples of"),
    (lambda g: g.add_concat([0], 1), "at least two"),
    (lambda g: g.add_concat([0, 0], 3), "dimension 3 is not one"),
    (lambda g: g.add_concat([0, g.add_permute(0, [1, 0, 2])], 2), r"cannot join \(4, 2, 4\) to \(2, 4, 4\)"),
    (lambda g: g.add_concat([0, g.add_constant(np.ones((2, 4, 4), np.float32))], 0), "constant"),
])
def test_bad_graphs_are_shape_errors(build, pattern):
    g = _core.Graph([2, 4, 4])
    with pytest.raises(bc.ShapeError, match=pattern):
        build(g)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_concat_joins_copies_along_any_dimension_and_plans_its_buffer(dim):
    """Three values joined along ``dim`` (one of them the input, one a view): numpy's concatenate, bit for
    bit, on 1 and 2 threads; the peak equals the plan."""
    g = _core.Graph([2, 3, 4])
    a = g.add_activation(0, "tanh")
    b = g.add_reshape(g.add_activation(0, "relu"), [2, 3, 4])
    c = g.add_concat([a, 0, b], dim)
    g.set_output(c)
    assert tuple(g.shape_of(c)) == tuple(3 * d if i == dim else d for i, d in enumerate((2, 3, 4)))
    x = np.random.default_rng(dim).standard_normal((7, 2, 3, 4)).astype(np.float32)
    tanh = _core.testing.row_layer(x.reshape(1, -1), "tanh", simd="definition").reshape(x.shape)
    want = np.concatenate([tanh, x, np.maximum(x, 0)], axis=dim + 1)
    for threads in (1, 2):
        got, peak, _ = g.run(x, seq(threads))
        assert got.tobytes() == want.tobytes()
        assert peak == g.plan_bytes(7, seq(threads))


def test_slice_takes_every_step_th_entry_of_a_range_along_one_dimension():
    """Slices of the input and of a computed value, with steps 1 and 3, joined: numpy's slicing, bit for bit."""
    g = _core.Graph([4, 9])
    a = g.add_slice(0, 1, 2, 8, 3)
    b = g.add_slice(g.add_activation(0, "relu"), 1, 7, 9)
    g.set_output(g.add_concat([a, b], 1))
    assert tuple(g.shape_of(a)) == (4, 2)
    x = np.random.default_rng(6).standard_normal((5, 4, 9)).astype(np.float32)
    want = np.concatenate([x[:, :, 2:8:3], np.maximum(x[:, :, 7:9], 0)], axis=2)
    got, peak, _ = g.run(x, seq())
    assert got.tobytes() == want.tobytes()
    assert peak == g.plan_bytes(5, seq())


@pytest.mark.parametrize("order", ["seq", "pairwise", "lanes:4", "exact"])
def test_matmul_of_two_computed_values_is_a_dot_per_element_in_the_order_and_batch_invariant(order):
    """a (2, 5, 7) from the input, b its tanh transposed (2, 7, 5): each output element the reference's dot
    (bc.orders.dot, itself checked against exact rationals), the same rows alone and in batches of 3 and 8
    on 1 and 2 threads; bf16 rounds a and b; the peak equals the plan (each worker's packed b counted)."""
    g = _core.Graph([2, 5, 7])
    b = g.add_permute(g.add_activation(0, "tanh"), [0, 2, 1])
    out = g.add_matmul(0, b)
    g.set_output(out)
    assert tuple(g.shape_of(out)) == (2, 5, 5) and g.flops_per_sample == 2 * 2 * 5 * 5 * 7
    x = np.random.default_rng(11).standard_normal((8, 2, 5, 7)).astype(np.float32)
    tanh_t = np.swapaxes(_core.testing.row_layer(x.reshape(1, -1), "tanh", simd="definition").reshape(x.shape), 2, 3)
    want = np.stack([ref.matmul(x[i], tanh_t[i], order) for i in range(len(x))])
    alone = np.concatenate([g.run(x[i:i + 1], bc.orders.run_options(order))[0] for i in range(len(x))])
    assert alone.tobytes() == want.tobytes()
    for threads in (1, 2):
        options = bc.orders.run_options(order, threads=threads)
        for B in (3, 8):
            got, peak, _ = g.run(x[:B], options)
            assert got.tobytes() == want[:B].tobytes()
            assert peak == g.plan_bytes(B, options)
    if order == "seq":
        bf16 = bc.orders.run_options("seq", "bf16")
        a16, b16 = (bc.orders.round_to(np.ascontiguousarray(v).ravel(), "bf16").reshape(v.shape) for v in (x[:2], tanh_t[:2]))
        assert g.run(x[:2], bf16)[0].tobytes() == np.stack([ref.matmul(a16[i], b16[i], "seq") for i in range(2)]).tobytes()


def test_matmul_needs_matching_shapes():
    g = _core.Graph([2, 5, 7])
    with pytest.raises(bc.ShapeError, match=r"matmul.*\(2, 5, 7\) and \(2, 5, 7\)"):
        g.add_matmul(0, 0)
    c = g.add_constant(np.ones((2, 7, 3), np.float32))
    with pytest.raises(bc.ShapeError, match="constant"):
        g.add_matmul(0, c)


@pytest.mark.parametrize("args, pattern", [((2, 0, 1), "dimension 2"), ((1, 3, 3), "got 3:3:1"),
                                           ((1, 0, 10), "stop <= 9"), ((1, 0, 4, 0), "got 0:4:0")])
def test_bad_slices_are_shape_errors(args, pattern):
    g = _core.Graph([4, 9])
    with pytest.raises(bc.ShapeError, match=pattern):
        g.add_slice(0, *args)


def test_bad_names_and_inputs():
    g = _core.Graph([4])
    with pytest.raises(bc.UnsupportedLayerError, match="known: relu"):
        g.add_activation(0, "hard_tanh")
    with pytest.raises(bc.UnsupportedLayerError, match="known: add"):
        g.add_binary(0, 0, "pow")
    g.set_output(g.add_activation(0, "relu"))
    with pytest.raises(bc.ShapeError, match="2-D"):
        g.run(np.ones(4, np.float32), seq())
    with pytest.raises(bc.DTypeError, match="float32"):
        g.run(np.ones((1, 4)), seq())
    with pytest.raises(bc.ShapeError, match="positive"):
        _core.Graph([3, 0])


def test_memory_limit_raises_out_of_memory_and_frees_everything():
    g = _core.Graph([64])
    h = g.add_linear(0, np.ones((256, 64), np.float32), None)
    g.set_output(g.add_linear(h, np.ones((4, 256), np.float32), None))
    x = np.ones((128, 64), np.float32)
    g.run(x, seq())
    resident = g.current_bytes
    g.memory_limit = g.plan_bytes(128, seq()) - 1
    with pytest.raises(bc.OutOfMemoryError):
        g.run(x, seq())
    assert g.current_bytes == resident  # only the packed weights stay
    g.memory_limit = -1
