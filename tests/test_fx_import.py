"""bc.from_torch through torch.fx: modules that are not chains (a CNN, a residual MLP, a custom forward)
become graph models whose native outputs equal, bit for bit, a slow reference written from the
definitions (tests/graph_reference.py), stay close to torch, are batch invariant, and sweep; what cannot
be read is refused naming the node, its operation and the user's line."""

import numpy as np
import pytest

import batchcore as bc
import graph_reference as ref
from batchcore.model.graph import GraphModel
from point_checks import assert_as_close_as_orders_allow

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((2, 1)), nn.Flatten(), nn.Linear(8, 5))

    def forward(self, x):
        h = F.relu(self.bn(self.conv1(x)))
        h = self.avg(self.pool(h)) + 0.5 * self.pool(h)
        return self.head(F.silu(self.conv2(h)))


class ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(12, 16)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU()) for _ in range(2))
        self.out = nn.Linear(16, 3)
        self.bias = nn.Parameter(torch.linspace(-1, 1, 3))

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return torch.softmax(self.out(h) - self.bias, dim=-1)


class CustomForward(nn.Module):
    """Tokens of 4 features: a per-token linear map, GELU's tanh form, a transpose, softmax along the token
    axis, log-softmax along the features, a mean and a sum (keepdim) broadcast back."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.mix = nn.Linear(5, 5)

    def forward(self, x):
        h = F.gelu(self.proj(x), approximate="tanh")  # (B, 5, 6)
        h = self.mix(h.transpose(1, 2))               # (B, 6, 5)
        h = F.softmax(h, dim=1) / 2.0 + torch.log_softmax(h, dim=-1)
        return h.permute(0, 2, 1).reshape(x.size(0), -1) + h.mean(1).sum(-1, keepdim=True)


class TextClassifier(nn.Module):
    """Token ids -> embedding + learned positions -> attention (an nn.MultiheadAttention, then a causal
    scaled_dot_product_attention over heads made by view/transpose, positions scaled by an arange)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.pos = nn.Parameter(torch.randn(1, 5, 8) * 0.1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        h = self.emb(tokens) + self.pos
        a, _ = self.attn(h, h, h)
        h = self.norm(h + a)
        h = h * (1 + torch.arange(tokens.size(1)).float()[:, None] / 10)
        q = h.view(h.size(0), 5, 2, 4).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        return self.head(o.transpose(1, 2).reshape(h.size(0), 5, 8))


class MobileBlock(nn.Module):
    """MobileNetV2's inverted residual with a squeeze-and-excitation gate: ReLU6 and a sigmoid."""

    def __init__(self):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(3, 6, 1), nn.BatchNorm2d(6), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.ReLU6())
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 6), nn.Sigmoid())
        self.project = nn.Conv2d(6, 3, 1)

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        h = h * self.gate(h).reshape(-1, 6, 1, 1)
        return x + self.project(h)


class AudioCNN(nn.Module):
    """1-D convolutions and pools over (channels, length) samples: padding, 'same', dilation, groups."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(2, 6, 5, padding=2), nn.BatchNorm1d(6), nn.ReLU(), nn.MaxPool1d(2),
                                  nn.Conv1d(6, 4, 3, dilation=2, groups=2, padding="same"),
                                  nn.AvgPool1d(3, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 6, 5))

    def forward(self, x):
        return self.body(x)


class Decoder(nn.Module):
    """Transposed convolutions (output padding, groups, dilation, 1-D) and nearest upsampling (module and function)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.grouped = nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, dilation=2)
        self.upsample = nn.Upsample(scale_factor=2)
        self.line = nn.ConvTranspose1d(4, 2, 3, stride=3, padding=1)
        self.head = nn.Linear(2 * 152, 5)

    def forward(self, x):
        h = F.relu(self.up(F.relu(self.down(x))))            # (6, 4, 6)
        h = self.upsample(self.grouped(h)).mean(2)            # (4, 9, 13) -> (4, 18, 26) -> (4, 26)
        h = F.interpolate(self.line(h), scale_factor=2)       # (2, 76) -> (2, 152)
        return self.head(h.flatten(1))


class Activations(nn.Module):
    """Hardswish, Hardsigmoid, Mish, LeakyReLU and ELU as modules and as functions, with their parameters."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Hardswish(), nn.Conv2d(6, 6, 1), nn.Mish(),
                                  nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(6 * 4 * 5, 8), nn.ELU(0.7),
                                  nn.Hardsigmoid(), nn.Linear(8, 6))

    def forward(self, x):
        h = self.body(x) * 4
        return F.mish(h) + F.hardswish(h) * F.elu(h, alpha=1.5) - F.leaky_relu(h, negative_slope=0.05) \
            + F.hardsigmoid(h)


def _encoder(norm_first):
    return nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=12, batch_first=True,
                                      norm_first=norm_first, activation="gelu")


def _randomise_bn(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return module.eval()


CASES = {
    "cnn": (SmallCNN, (2, 8, 7), "float32"),
    "audio_cnn": (AudioCNN, (2, 24), "float32"),
    "activations": (Activations, (3, 4, 5), "float32"),
    "decoder": (Decoder, (3, 4, 5), "float32"),
    "mobile_block": (MobileBlock, (3, 6, 5), "float32"),
    "residual_mlp": (ResidualMLP, (12,), "float32"),
    "custom_forward": (CustomForward, (5, 4), "float32"),
    "encoder_post_norm": (lambda: _encoder(False), (5, 8), "float32"),
    "encoder_pre_norm": (lambda: _encoder(True), (5, 8), "float32"),
    "text_attention": (TextClassifier, (5,), "int64"),
}


def samples(model, n, rng):
    """n random inputs for the model: standard normal numbers, or token ids of its embedding table."""
    if model.input_dtype == "int64":
        rows = min(len(node.params["table"]) for node in model.nodes if node.op == "embedding")
        return rng.integers(0, rows, (n, *model.input_shape))
    return rng.standard_normal((n, *model.input_shape)).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    torch.manual_seed(0)
    make, shape, dtype = CASES[request.param]
    module = _randomise_bn(make())
    model = bc.from_torch(module, input_shape=shape, input_dtype=dtype)
    return request.param, module, model, samples(model, 6, np.random.default_rng(1))


def test_reads_a_graph_model(case):
    name, module, model, x = case
    assert isinstance(model, GraphModel)
    assert model.source_module is module
    with torch.no_grad():
        assert model.output_shape == tuple(module(torch.from_numpy(x)).shape[1:])


@pytest.mark.parametrize("order", ["seq", "pairwise", "lanes:4"])
def test_native_equals_the_definitions_bit_for_bit(case, order):
    _, _, model, x = case
    got = bc.native(order=order).run(model, x[:3])
    want = ref.run(model, x[:3], order)
    assert got.tobytes() == want.tobytes()


def test_native_is_close_to_torch(case):
    _, module, model, x = case
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    got = bc.native().run(model, x).reshape(len(x), -1)
    exact = bc.native(order="exact").run(model, x).reshape(len(x), -1)
    # torch's error against the exactly rounded dots bounds how far the two may lie apart
    assert_as_close_as_orders_allow(got, want, exact)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_invariant(case, threads):
    _, _, model, x = case
    rng = np.random.default_rng(threads)
    backend = bc.native(threads=threads)
    alone = backend.run(model, x[:1])
    for B in (2, 17, 64):
        for position in (0, B // 2, B - 1):
            batch = samples(model, B, rng)
            batch[position] = x[0]
            assert backend.run(model, batch)[position].tobytes() == alone[0].tobytes(), (B, position)


def test_exact_peak_memory_equals_the_plan(case):
    _, _, model, x = case
    core = bc.native().core_model(model)
    x = x.astype(np.float32)  # the core takes token ids as the float32 values that hold them
    for B in (1, 5, 6):
        for precision in ("fp32", "bf16"):
            options = bc.orders.run_options("seq", precision)
            _, peak, predicted = core.run(x[:B] if B <= len(x) else x, options)
            assert peak == predicted == core.plan_bytes(min(B, len(x)), options)


def test_torch_backend_is_the_module_in_plain_loops(case):
    _, module, model, x = case
    for B in (1, 4):
        with torch.no_grad():
            want = torch.cat([module(torch.from_numpy(x[i:i + B])) for i in range(0, len(x), B)]).numpy()
        got = bc.torch().run_batched(model, x, B)
        assert got.tobytes() == want.tobytes()


def test_sweep_of_a_module_reads_it_with_the_data_shape():
    torch.manual_seed(0)
    net = _randomise_bn(SmallCNN())
    x = torch.randn(40, 2, 8, 7)  # a torch tensor: used as it is (float32)
    res = bc.sweep(net, data=x, batch_sizes=[1, 3, 16], backends=[bc.native(), bc.torch(measure_memory=False)],
                   timer=bc.Timer(min_time_s=0.01, timeout_s=0.2, min_samples=3), rounds=1, ceilings=False)
    native = [p for p in res.points if p["backend"].startswith("native")]
    assert [p["bitwise_equal_frac"] for p in native] == [1.0, 1.0, 1.0]
    assert all(p["peak_bytes"] == p["predicted_bytes"] for p in native)
    flops = bc.from_torch(net, input_shape=(2, 8, 7)).flops_per_row
    conv1, conv2, linear = 2 * 4 * 8 * 7 * 2 * 9, 2 * 4 * 2 * 2 * 2 * 9, 2 * 5 * 8
    assert flops == conv1 + conv2 + linear


def test_default_backends_leave_out_the_array_backends():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)).eval()
    x = np.random.default_rng(0).standard_normal((8, 1, 3, 6)).astype(np.float32)
    res = bc.sweep(net, data=x, batch_sizes=[1, 2], timer=bc.Timer(min_time_s=0.01, timeout_s=0.1, min_samples=3),
                   rounds=1, ceilings=False)
    assert not any(p["backend"].startswith("numpy") for p in res.points)  # asked for, NumPy runs it (below)


def test_numpy_runs_each_graph_close_to_the_exactly_rounded_result(case):
    """NumPy's own pass (its BLAS, its reductions) agrees with the native core's exact order to float32
    accuracy: the definitions (shapes, padding, pools' divisors, activations) are the same."""
    _, _, model, x = case
    exact = bc.native(order="exact").run(model, x)
    got = bc.numpy().run(model, x)
    assert got.shape == exact.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=2e-4, atol=2e-5)


# -- what is refused --------------------------------------------------------------------------------

class Erf(nn.Module):
    def forward(self, x):
        return torch.erf(x) + 1


class FirstChannel(nn.Module):
    def forward(self, x):
        return x[:, 0] * 2.0


class SecondRow(nn.Module):
    def forward(self, x):
        return x[:, 1]


def test_indexing_a_dimension_of_one():
    model = bc.from_torch(FirstChannel(), input_shape=(1, 3))
    x = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
    assert np.array_equal(bc.native().run(model, x), x[:, 0] * 2)
    with pytest.raises(bc.UnsupportedLayerError, match="only x\\[:, 0\\]"):
        bc.from_torch(SecondRow(), input_shape=(2, 3))


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


class TupleOut(nn.Module):
    def forward(self, x):
        return x * 2, x + 1


class BatchSoftmax(nn.Module):
    def forward(self, x):
        return torch.softmax(x * 1.0, dim=0)


class LoopsOverColumns(nn.Module):
    """torch.fx cannot trace it (range over a proxy's size); torch.export can."""

    def __init__(self, last=None):
        super().__init__()
        self.last = last

    def forward(self, x):
        total = x[:, 0]
        for i in range(1, x.shape[1]):
            total = total + x[:, i] * 2
        return torch.erf(total) if self.last == "erf" else total


def test_a_module_torch_fx_cannot_trace_is_read_through_torch_export():
    """The columns a loop reads become the core's slices: the sums, in torch's order, bit for bit."""
    model = bc.from_torch(LoopsOverColumns(), input_shape=(4, 3))
    assert [n.op for n in model.nodes].count("slice") == 4
    x = np.random.default_rng(5).standard_normal((7, 4, 3)).astype(np.float32)
    with torch.no_grad():
        want = LoopsOverColumns()(torch.from_numpy(x)).numpy()
    assert bc.native().run(model, x).tobytes() == want.tobytes()
    assert ref.run(model, x).tobytes() == want.tobytes()


class GatesInALoop(nn.Module):
    """The new activations as aten operations (the loop over a size makes torch.fx fail: read through export)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        h = self.lin(x) * 3
        parts = [F.hardswish(h), F.hardsigmoid(h), F.mish(h), F.leaky_relu(h, 0.1), F.elu(h, 0.7)]
        total = parts[0]
        for i in range(1, x.size(1) - 1):
            total = total + parts[i]
        return total


def test_activations_are_read_through_torch_export_too():
    torch.manual_seed(3)
    module = GatesInALoop().eval()
    model = bc.from_torch(module, input_shape=(6,))
    names = [(n.params["name"], n.params.get("alpha")) for n in model.nodes if n.op == "activation"]
    assert names == [("hardswish", None), ("hardsigmoid", None), ("mish", None), ("leaky_relu", 0.1),
                     ("elu", 0.7)]
    x = np.random.default_rng(6).standard_normal((9, 6)).astype(np.float32)
    got = bc.native().run(model, x)
    assert got.tobytes() == ref.run(model, x).tobytes()
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


@pytest.mark.parametrize("module, shape, pattern", [
    (Erf(), (4,), r"node 'erf' \(call_function erf\) at .*test_fx_import.py:\d+ in forward "
                  r"\(return torch.erf\(x\) \+ 1\): erf is not supported"),
    (nn.Sequential(nn.Conv2d(1, 1, 1), nn.Upsample(scale_factor=2, mode="bilinear")), (1, 3, 3),
     r"\(call_module 1\).*Upsample\(mode='bilinear'\) is not supported, only mode 'nearest'"),
    (nn.Sequential(nn.Conv2d(1, 1, 1), nn.Upsample(scale_factor=1.5)), (1, 4, 4), "not by whole factors"),
    (nn.Sequential(nn.ConvTranspose2d(1, 1, 2, padding=2)), (1, 4, 4), "crops the output"),
    (nn.Sequential(nn.Linear(4, 4), nn.Upsample(scale_factor=2)), (4,), "fails on a batch of samples of shape"),
    (TwoInputs(), (4,), "takes 2 inputs"),
    (TupleOut(), (4,), "returns one tensor"),
    (BatchSoftmax(), (4,), "batch dimension"),
    (Branchy(), (4,), "torch.fx cannot trace"),
    (LoopsOverColumns("erf"), (4, 3), r"node 'erf' \(call_function erf.default\) at .*test_fx_import.py:\d+ in "
                                      r"forward \(return torch.erf\(total\).*\): aten.erf is not supported"),
    (nn.Sequential(nn.Conv2d(1, 1, 2, padding="same")), (1, 4, 4), "pads unevenly"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softplus()), (4,), "Softplus is not supported"),
])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_unsupported_is_named(module, shape, pattern):
    with pytest.raises(bc.UnsupportedLayerError, match=pattern):
        bc.from_torch(module.eval(), input_shape=shape)


def test_a_graph_module_without_input_shape_says_what_is_missing():
    with pytest.raises(bc.UnsupportedLayerError, match="needs input_shape="):
        bc.from_torch(SmallCNN().eval())


@pytest.mark.parametrize("bad", [0, (2, -1), "abc", ()])
def test_bad_input_shape(bad):
    with pytest.raises(bc.ShapeError, match="input_shape"):
        bc.from_torch(SmallCNN().eval(), input_shape=bad)


def test_wrong_sample_shape_is_a_shape_error(case):
    _, _, model, x = case
    with pytest.raises(bc.ShapeError):
        bc.native().run(model, x.reshape(len(x), -1)[:, :-1].copy())
    bad = x.copy()
    if model.input_dtype == "int64":
        bad.flat[7] = 20  # past the 20-row table
        with pytest.raises(bc.ShapeError, match="not a row of the 20-row table"):
            bc.native().run(model, bad)
        with pytest.raises(bc.DTypeError, match="int64"):
            bc.native().run(model, x.astype(np.float32))
        return
    bad.flat[7] = np.nan
    with pytest.raises(bc.NonFiniteError, match="NaN"):
        bc.native().run(model, bad)


def test_exact_order_is_the_correctly_rounded_value_for_sampled_elements():
    """A conv then a linear over the last dimension, order 'exact': sampled outputs against rationals."""
    from reference import reference_dot

    torch.manual_seed(3)
    module = nn.Sequential(nn.Conv2d(2, 3, 3, stride=(1, 2), padding=1), nn.Linear(4, 5)).eval()
    model = bc.from_torch(module, input_shape=(2, 6, 8))
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 8)).astype(np.float32)
    got = bc.native(order="exact").run(model, x)
    w1, b1 = module[0].weight.detach().numpy(), module[0].bias.detach().numpy()
    w2, b2 = module[1].weight.detach().numpy(), module[1].bias.detach().numpy()
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # +0 taps
    for n, c, h, j in [(0, 0, 0, 0), (1, 2, 5, 4), (0, 1, 3, 2), (1, 0, 2, 1)]:
        conv_row = [reference_dot(padded[n, :, h:h + 3, 2 * w:2 * w + 3].ravel(), w1[c].ravel(), b1[c], "exact")
                    for w in range(4)]
        assert got[n, c, h, j] == reference_dot(conv_row, w2[j], b2[j], "exact")


def test_sweep_of_a_text_model_takes_int64_token_ids():
    torch.manual_seed(0)
    net = TextClassifier().eval()
    tokens = torch.randint(0, 20, (24, 5))  # int64, as an embedding takes them
    res = bc.sweep(net, data=tokens, batch_sizes=[1, 4, 24], backends=[bc.native(), bc.torch(measure_memory=False)],
                   timer=bc.Timer(min_time_s=0.01, timeout_s=0.2, min_samples=3), rounds=1, ceilings=False)
    native = [p for p in res.points if p["backend"].startswith("native")]
    assert [p["bitwise_equal_frac"] for p in native] == [1.0, 1.0, 1.0]
    with pytest.raises(bc.ShapeError, match="token ids"):
        bc.sweep(bc.from_torch(net, input_shape=(5,), input_dtype="int64"), backends=[bc.native()])


def test_largest_batch_of_a_graph_model_is_the_plan_under_the_budget():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4)).eval()
    model = bc.from_torch(net, input_shape=(3, 16, 16))
    native = bc.native()
    found = bc.largest_batch(model, native, budget_bytes=2**20)
    assert native.plan_bytes(model, found.batch_size) <= 2**20 < native.plan_bytes(model, found.batch_size + 1)
    assert found.peak_bytes == native.plan_bytes(model, found.batch_size)
