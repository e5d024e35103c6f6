"""A user's own module run as it is by the torch backend: any forward, inputs of any shape (images, token
ids, several inputs), outputs as tensors, tuples or dicts, float32 / float16 / bfloat16. Every figure of
a sweep is recomputed here with plain torch loops and an independent ULP count."""

import numpy as np
import pytest

import batchcore as bc
from batchcore.results import numerics

torch = pytest.importorskip("torch")
FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
# torch's CPU memory is measured in a fresh process per point (about a second each): only the test of it pays
TORCH = bc.torch(measure_memory=False)


class MyNet(torch.nn.Module):
    """A custom forward of Linear and ReLU with a residual (what from_torch's Sequential reader refused)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = torch.nn.Linear(48, 48), torch.nn.Linear(48, 48), torch.nn.Linear(48, 7)

    def forward(self, x):
        return self.head(x + torch.relu(self.b(torch.relu(self.a(x)))))


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 4 * 4, 10)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return {"logits": self.fc(h.flatten(1)), "features": h}


class TokensAndMask(torch.nn.Module):
    """Two inputs (int64 token ids and a float mask), a tuple of outputs."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.out = torch.nn.Linear(16, 5)

    def forward(self, tokens, mask):
        pooled = (self.emb(tokens) * mask[..., None]).sum(1)
        return self.out(pooled), tokens.argmax(1)


def ordered(values, bits):
    """Independent ULP positions: every finite value of the format sorted, -0 merged with +0; a value's
    position is its rank. ``bits``: all bit patterns as float64 values of the format."""
    finite = np.unique(bits[np.isfinite(bits)])  # unique merges -0 and +0
    return np.searchsorted(finite, values.astype(np.float64))


with np.errstate(invalid="ignore"):  # signalling NaN patterns among them
    ALL_FP16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    ALL_BF16 = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)


def independent_max_ulp(a, b, fmt):
    table = {"fp16": ALL_FP16, "bf16": ALL_BF16}.get(fmt)
    if table is None:  # float32: the rank of a float32 among all float32s, counted from the bits by hand
        def rank(v):
            i = v.astype(np.float32).view(np.uint32).astype(np.int64)
            return np.where(i >= 1 << 31, -(i - (1 << 31)), i)
        return int(np.abs(rank(a) - rank(b)).max())
    return int(np.abs(ordered(a, table) - ordered(b, table)).max())


def plain_torch_outputs(module, inputs, B):
    """The module over all rows in consecutive batches of B, as a user's loop writes it."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(inputs[0]), B):
            r = module(*[t[i:i + B] for t in inputs])
            outs.append(r)
    return outs


def flatten(result):
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for v in result.values() for t in flatten(v)]
    return [t for v in result for t in flatten(v)]


def joined(outs):
    per = [flatten(o) for o in outs]
    return [torch.cat([p[i] for p in per]) for i in range(len(per[0]))]


def check_points_against_plain_torch(res, module, inputs, labels=None):
    b1 = joined(plain_torch_outputs(module, inputs, 1))
    for p in res.points:
        got = joined(plain_torch_outputs(module, inputs, p["batch_size"]))
        equal = torch.cat([(g == w).reshape(-1) | (torch.isnan(g) & torch.isnan(w)).reshape(-1)
                           if g.is_floating_point() else (g == w).reshape(-1) for g, w in zip(got, b1, strict=False)])
        # bitwise: float equality but for signed zeros, which this data never produces
        assert p["bitwise_equal_frac"] == pytest.approx(equal.double().mean().item(), abs=0), p["batch_size"]
        floats = [(g, w) for g, w in zip(got, b1, strict=False) if g.is_floating_point()]
        fmt = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
        want_ulp = max(independent_max_ulp(g.float().numpy(), w.float().numpy(), fmt[g.dtype]) for g, w in floats)
        assert p["max_ulp_vs_b1"] == want_ulp, p["batch_size"]
        logits = next(g for g, _ in floats if g.dim() == 2)
        logits_b1 = next(w for g, w in floats if g.dim() == 2)
        assert p["argmax_changed"] == int((logits.argmax(1) != logits_b1.argmax(1)).sum())
        if labels is not None:
            assert p["accuracy"] == pytest.approx(float((logits.argmax(1).numpy() == labels).mean()))
    # classes: batch sizes whose outputs are equal in every bit
    fps = {p["batch_size"]: p["fingerprint"] for p in res.points}
    for b1_, f1 in fps.items():
        for b2_, f2 in fps.items():
            same = all(torch.equal(x, y) for x, y in zip(joined(plain_torch_outputs(module, inputs, b1_)),
                                                         joined(plain_torch_outputs(module, inputs, b2_)), strict=False))
            assert (f1 == f2) == same, (b1_, b2_)


def test_a_custom_forward_sweeps_through_torch_as_it_is():
    torch.manual_seed(0)
    net = MyNet().eval()
    x = np.random.default_rng(0).standard_normal((40, 48)).astype(np.float32)
    res = bc.sweep(net, data=x, batch_sizes=[1, 2, 7, 40], backends=[TORCH], timer=FAST, rounds=1)
    assert [p["batch_size"] for p in res.points] == [1, 2, 7, 40]
    described = res.config["model"]
    assert described["kind"] == "opaque module" and described["framework"] == "torch" and described["class"] == "MyNet"
    check_points_against_plain_torch(res, net, (torch.from_numpy(x),))
    assert all(p["gflops"] is None and p["max_ulp_vs_exact"] is None for p in res.points)
    rows = [line.split() for line in res.table().splitlines() if line.startswith("torch[cpu]")]
    assert len(rows) == 4 and all(r[8:11] == ["-", "-", "-"] for r in rows)  # GFLOP/s, %peak, %roof unknown


def test_images_as_a_tensor_and_a_dict_of_outputs_with_labels():
    torch.manual_seed(1)
    net = SmallCNN().eval()
    images = torch.randn(33, 1, 8, 8)
    labels = np.arange(33) % 10
    res = bc.sweep(net, data=images, labels=labels, batch_sizes=[1, 4, 33], backends=[TORCH], timer=FAST,
                   rounds=1)
    assert [o["name"] for o in res.points[0]["outputs"]] == ["output['logits']", "output['features']"]
    check_points_against_plain_torch(res, net, (images,), labels)
    # numpy images give the same points' bits
    again = bc.sweep(net, data=images.numpy(), batch_sizes=[1, 4, 33], backends=[TORCH], timer=FAST, rounds=1)
    assert [p["fingerprint"] for p in again.points] == [p["fingerprint"] for p in res.points]


def test_token_ids_and_a_mask_as_two_inputs_and_a_tuple_of_outputs():
    torch.manual_seed(2)
    net = TokensAndMask().eval()
    tokens = torch.randint(0, 50, (24, 9))
    mask = (torch.rand(24, 9) > 0.3).float()
    res = bc.sweep(net, data=(tokens, mask), batch_sizes=[1, 5, 24], backends=[TORCH], timer=FAST, rounds=1)
    assert [o["format"] for o in res.points[0]["outputs"]] == ["fp32", "int64"]
    check_points_against_plain_torch(res, net, (tokens, mask))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_modules_are_compared_in_their_own_format(dtype):
    torch.manual_seed(3)
    net = SmallCNN().eval().to(getattr(torch, dtype))
    images = torch.randn(20, 1, 8, 8).to(getattr(torch, dtype))
    res = bc.sweep(net, data=images, batch_sizes=[1, 3, 20], backends=[TORCH], timer=FAST, rounds=1)
    assert res.points[0]["precision"] == {"float16": "fp16", "bfloat16": "bf16"}[dtype]
    check_points_against_plain_torch(res, net, (images,))
    with pytest.raises(bc.DTypeError, match="does not convert"):
        bc.sweep(net, data=images.float(), batch_sizes=[1], backends=[TORCH], timer=FAST)


def test_ulps_in_half_formats_against_an_enumeration_of_every_value():
    rng = np.random.default_rng(4)
    a16 = rng.standard_normal(2000).astype(np.float16)
    b16 = (a16.astype(np.float32) * (1 + rng.standard_normal(2000) * 1e-2)).astype(np.float16)
    want = np.abs(ordered(a16, ALL_FP16) - ordered(b16, ALL_FP16))
    assert np.array_equal(numerics.ulp_distance(a16, b16), want)
    to_bf16 = lambda v: ((v.astype(np.float32).view(np.uint32) >> 16) << 16).view(np.float32)  # noqa: E731
    a, b = to_bf16(rng.standard_normal(2000)), to_bf16(rng.standard_normal(2000) * 3)
    want = np.abs(ordered(a, ALL_BF16) - ordered(b, ALL_BF16))
    assert np.array_equal(numerics.ulp_distance(a, b, "bf16"), want)
    assert numerics.ulp_distance(np.float16([0.0]), np.float16([-0.0]))[0] == 0
    with pytest.raises(bc.DTypeError):
        numerics.ulp_distance(np.float32([1.0 + 2**-20]), np.float32([1.0]), "bf16")  # not a bfloat16 value
    with pytest.raises(bc.DTypeError):
        numerics.ulp_distance(np.float16([1.0]), np.float32([1.0]))


def test_bad_input_to_a_module_sweep_names_the_problem():
    net = SmallCNN().eval()
    images = torch.randn(8, 1, 8, 8)
    run = lambda **kw: bc.sweep(net, **{"batch_sizes": [1, 2], "backends": [TORCH], "timer": FAST, **kw})  # noqa: E731
    with pytest.raises(bc.ShapeError, match="needs data="):
        run()
    with pytest.raises(bc.DTypeError, match="float64"):
        run(data=images.double().numpy())
    bad = images.clone()
    bad[3, 0, 2, 2] = float("nan")
    with pytest.raises(bc.NonFiniteError):
        run(data=bad)
    with pytest.raises(bc.ShapeError, match="first dimensions differ"):
        bc.sweep(TokensAndMask().eval(), data=(torch.zeros(4, 3, dtype=torch.long), torch.ones(5, 3)),
                 batch_sizes=[1], backends=[TORCH], timer=FAST)
    with pytest.raises(bc.ShapeError, match="exceeds"):
        run(data=images, batch_sizes=[16])
    with pytest.raises(bc.ModuleError, match=r"SmallCNN raised RuntimeError on a batch of \(1, 1, 9\) float32"):
        run(data=torch.randn(8, 1, 9))
    with pytest.raises(bc.ArgumentError, match="bc.from_torch does not read it"):
        run(data=images, backends=[TORCH, bc.native()])
    with pytest.raises(bc.ArgumentError, match="rows="):
        run(data=images, rows=8)
    with pytest.raises(bc.ShapeError, match="first dimension is the batch"):
        bc.sweep(lambda x: x.sum(), data=images, batch_sizes=[1], backends=[TORCH], timer=FAST)
    with pytest.raises(bc.DTypeError, match="no torch tensor to compare"):
        bc.sweep(lambda x: [None, 3], data=images, batch_sizes=[1], backends=[TORCH], timer=FAST)
    # what is not a tensor is left out of the comparison and named, not refused
    kept = bc.sweep(lambda x: [x, 3], data=images, batch_sizes=[1], backends=[TORCH], timer=FAST, rounds=1)
    assert kept.points[0]["outputs_left_out"] == ["output[1] (int)"]


def test_a_module_in_training_mode_runs_in_eval_and_is_given_back_as_it_was():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten())
    net.train()
    images = torch.randn(6, 1, 5, 5)
    res = bc.sweep(net, data=images, batch_sizes=[1, 6], backends=[TORCH], timer=FAST, rounds=1)
    assert net.training and all(m.training for m in net.modules())
    assert int(net[1].num_batches_tracked) == 0  # no pass ran in training mode
    net.eval()  # the figures are those of eval mode (in training mode BatchNorm would use each batch's statistics)
    check_points_against_plain_torch(res, net, (images,))


def test_a_sequential_that_from_torch_reads_still_runs_on_every_backend():
    net = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    x = np.random.default_rng(5).standard_normal((10, 12)).astype(np.float32)
    res = bc.sweep(net, data=x, batch_sizes=[1, 10], backends=[TORCH, bc.native()], timer=FAST, rounds=1)
    assert "opaque module" not in str(res.config["model"])
    assert {p["backend"] for p in res.points} == {"torch[cpu]", "native[seq]"}
    assert all(p["max_ulp_vs_exact"] is not None for p in res.points)


class Widen(torch.nn.Module):
    """Holds a known intermediate: B x (48 * 1024) floats, 192 KiB per row."""

    def forward(self, x):
        return x.repeat(1, 1024).sum(1, keepdim=True)


class DataDependent(torch.nn.Module):
    def forward(self, x):
        return x * 2 if float(x.sum()) > 0 else x  # Python control flow on a value: export cannot capture it


def test_cpu_memory_of_a_users_module_in_a_fresh_process():
    from batchcore.backends import pytorch_memory as rss

    if not rss.supported():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    x = np.random.default_rng(6).standard_normal((64, 48)).astype(np.float32)
    res = bc.sweep(Widen(), data=x, batch_sizes=[16, 64], backends=[bc.torch()], timer=FAST, rounds=1)
    for p in res.points:
        held = p["batch_size"] * 48 * 1024 * 4  # the repeat's output, alive while sum reads it
        assert p["memory_method"] == rss.MODULE_METHOD
        assert held <= p["peak_bytes"] <= 2 * held + (16 << 20), (p["batch_size"], p["peak_bytes"], held)
    res = bc.sweep(DataDependent(), data=x, batch_sizes=[2], backends=[bc.torch()], timer=FAST, rounds=1)
    assert res.points[0]["peak_bytes"] is None
    assert res.points[0]["memory_method"].startswith("not measured (torch.export could not capture DataDependent")


class Cache:
    """Stands for a Hugging Face cache object: state a model returns that is not a tensor."""

    def __init__(self, keys):
        self.keys = keys


class TinyLM(torch.nn.Module):
    """(rows, positions) token ids -> a dict of (rows, positions, vocabulary) logits and a cache object,
    as a causal language model returns (mixing positions, never rows)."""

    def __init__(self, vocab=11, width=16):
        super().__init__()
        self.emb, self.mix = torch.nn.Embedding(vocab, width), torch.nn.Linear(width, width)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, ids):
        h = torch.tanh(self.mix(self.emb(ids).cumsum(1)))
        return {"logits": self.head(h), "cache": Cache(h), "steps": ids.shape[1]}


def test_a_language_models_logits_per_position_and_what_is_left_out():
    torch.manual_seed(3)
    lm = TinyLM().eval()
    ids = torch.from_numpy(np.random.default_rng(3).integers(0, 11, (24, 6)))
    labels = np.random.default_rng(4).integers(0, 11, (24, 6))
    res = bc.sweep(lm, data=ids, labels=labels, batch_sizes=[1, 3, 24], backends=[TORCH], timer=FAST, rounds=1)
    with torch.no_grad():
        per_b = {B: torch.cat([lm(ids[i:i + B])["logits"] for i in range(0, 24, B)]) for B in (1, 3, 24)}
    for p in res.points:
        got, b1 = per_b[p["batch_size"]], per_b[1]
        assert p["outputs"] == [{"name": "output['logits']", "format": "fp32", "shape": [24, 6, 11]}]
        assert p["outputs_left_out"] == ["output['cache'] (Cache)", "output['steps'] (int)"]
        # predictions per position: argmax over the vocabulary, 6 per row, counted one by one
        assert p["argmax_changed"] == int((got.argmax(-1) != b1.argmax(-1)).sum())
        assert p["accuracy"] == pytest.approx(float((got.argmax(-1).numpy() == labels).mean()), abs=0)
        assert p["argmax_of"] == ("argmax over the last dimension of output['logits'] [24, 6, 11]: "
                                  "6 predictions of 11 classes per row")
        assert p["bitwise_equal_frac"] == pytest.approx(float((got == b1).double().mean()), abs=0)
    with pytest.raises(bc.ShapeError, match=r"labels must be integers of shape \(24, 6\)"):
        bc.sweep(lm, data=ids, labels=labels[:, 0], batch_sizes=[1], backends=[TORCH], timer=FAST, rounds=1)
    with pytest.raises(bc.DTypeError, match=r"no torch tensor to compare \(output\['cache'\] \(Cache\)\)"):
        bc.sweep(lambda x: {"cache": Cache(x)}, data=ids, batch_sizes=[1], backends=[TORCH], timer=FAST)


def test_a_failed_memory_measurement_is_said_in_the_point_and_the_sweep_goes_on(monkeypatch):
    """What the measuring process printed (its warnings) reaches the point; the other figures are there."""
    from batchcore.backends import pytorch_memory as rss

    said = {"error": "RuntimeError: cannot load", "printed": "UserWarning: the capture names a type nobody imported"}
    monkeypatch.setattr(rss, "supported", lambda: True)
    monkeypatch.setattr(rss._SERVER, "ask", lambda request, timeout_s: said)
    x = np.random.default_rng(6).standard_normal((8, 48)).astype(np.float32)
    res = bc.sweep(MyNet().eval(), data=x, batch_sizes=[1, 8], backends=[bc.torch()], timer=FAST, rounds=1)
    for p in res.points:
        assert p["peak_bytes"] is None and p["time_ms"] > 0
        assert p["memory_method"] == (f"not measured (measuring torch's CPU memory at B={p['batch_size']} failed: "
                                      "RuntimeError: cannot load; the measuring process printed: UserWarning: the "
                                      "capture names a type nobody imported)")


# The server forks in a process of its own (which never imports JAX); run here, the fork happens in this test
# process, where another test may have imported JAX, whose at-fork hook warns about multithreading.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called")
def test_the_measuring_process_sends_back_what_it_printed(monkeypatch):
    """The server's fork, run from here with its pass replaced by one that warns and fails."""
    import os
    import sys

    from batchcore.backends import pytorch_memory_server as server

    def failing(request, resident=()):
        print("UserWarning: a warning only the child saw", file=sys.stderr)  # as Python's warnings print
        os.write(2, b"a line that C code wrote\n")
        print("and a line on its standard output")
        return {"error": "ValueError: no pass"}

    monkeypatch.setattr(server, "measure", failing)
    answer = server._answer({}, [])
    assert answer["error"] == "ValueError: no pass"
    for line in ("UserWarning: a warning only the child saw", "a line that C code wrote", "and a line on its standard output"):
        assert line in answer["printed"]


class Recurrent(torch.nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8)
        self.rnn = getattr(torch.nn, kind)(8, 12, batch_first=True)
        self.fc = torch.nn.Linear(12, 3)

    def forward(self, ids):
        h, _ = self.rnn(self.emb(ids))
        return self.fc(h[:, -1])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_a_recurrent_module_is_refused_for_what_it_is_and_runs_as_it_is_quietly(kind, capfd):
    net = Recurrent(kind).eval()
    with pytest.raises(bc.UnsupportedLayerError, match=f"{kind} is a recurrent layer") as refused:
        bc.from_torch(net, input_shape=(5,), input_dtype="int64")
    assert "layer 0" not in str(refused.value) and refused.value.__context__ is None  # no misleading chain
    assert f"{__file__}:" in str(refused.value)  # the user's line
    ids = np.random.default_rng(7).integers(0, 20, (6, 5))
    capfd.readouterr()
    res = bc.sweep(net, data=ids, batch_sizes=[1, 6], backends=[bc.torch()], timer=FAST, rounds=1, progress=False)
    assert res.points[-1]["peak_bytes"] is not None  # its torch.export capture, made without a word
    assert capfd.readouterr().err == ""


def test_token_ids_of_another_integer_type_are_named_not_dumped():
    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = torch.nn.Embedding(30, 8), torch.nn.Linear(8, 2)

        def forward(self, ids):
            return self.fc(self.emb(ids).mean(1))

    ids = np.random.default_rng(8).integers(0, 30, (4, 5)).astype(np.int32)
    with pytest.raises(bc.ArgumentError, match=r"the data is int32 \(nothing is converted silently: pass "
                                               r"data.astype\(np.int64\)\)") as refused:
        bc.sweep(Bag().eval(), data=ids, batch_sizes=[1], backends=[bc.native()], timer=FAST)
    assert "\n" not in str(refused.value)
    graph = bc.from_torch(Bag().eval(), input_shape=(5,), input_dtype="int64")
    with pytest.raises(bc.DTypeError, match="token ids must be an int64"):
        bc.native().run(graph, ids)
