"""Changed predictions explained (batchcore/explain/flips.py) in the sweep's points: the verdicts on
hand-derived numbers; rounding flips of planted tied classes are 'within rounding', with every flipped row
listed; a backend whose output depends on the batch is 'suspect'; a backend that computes in bfloat16 while
saying float32 has outputs beyond rounding's reach of the exactly rounded result, a float32 one none."""

import numpy as np
import pytest

import batchcore as bc
from batchcore.explain.flips import flip_records

QUICK = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)


def test_flip_verdicts_on_hand_derived_numbers():
    a, e = 2.0 ** -25, 2.0 ** -24
    y_b1 = np.array([[0.5, 0.25, 0.5 - a]], dtype=np.float32)  # class 0 by a margin of 2^-25
    y = np.array([[0.5 - e, 0.25, 0.5 - a]], dtype=np.float32)  # class 2: the pair's difference moved by 2^-24
    labels = np.array([2])
    (f,) = flip_records(y, y_b1, labels, np.array([[a, 0.0, a]]))  # bound 2 (2^-25 + 2^-25) = 2^-23
    assert (f["row"], f["pred_b1"], f["pred"], f["label"]) == (0, 0, 2, 2)
    assert f["margin_b1"] == a and f["max_abs_delta"] == e and f["pair_change"] == e
    assert f["rounding_bound"] == 2.0 ** -23 and f["verdict"] == "within rounding"
    (f,) = flip_records(y, y_b1, labels, np.array([[2.0 ** -27, 0.0, 2.0 ** -27]]))  # bound 2^-25 < 2^-24
    assert f["verdict"] == "suspect"
    (f,) = flip_records(y, y_b1, labels, None)
    assert f["verdict"] == "no bound" and f["rounding_bound"] is None
    assert flip_records(y_b1, y_b1, labels, None) == []


def tied_model(K=256, seed=2):
    """Two classes whose weights are each other reversed, over palindromic rows: both logits sum the same
    products in reverse order, exactly equal, so which one wins is rounding's choice."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(K).astype(np.float32)
    model = bc.Model([bc.Layer("linear", {"weight": np.stack([w, w[::-1]]), "bias": np.zeros(2, np.float32)})], K)
    half = rng.standard_normal((400, K // 2)).astype(np.float32)
    return model, np.concatenate([half, half[:, ::-1]], axis=1)


def sweep(model, x, backends, **kw):
    return bc.sweep(model, [1, 8], backends=backends, data=x, timer=QUICK, rounds=1, progress=False, ceilings=False, **kw)


def test_rounding_flips_of_tied_classes_are_within_rounding_in_the_sweep():
    model, x = tied_model()
    backend = bc.native(policy="library-like")  # lanes:16 at B=1, seq at B=8: other roundings, real flips
    res = sweep(model, x, [backend], labels=np.zeros(400, np.int64))
    p8 = next(p for p in res.points if p["batch_size"] == 8)
    want = np.nonzero(backend.run_batched(model, x, 8).argmax(1) != backend.run_batched(model, x, 1).argmax(1))[0]
    assert len(want) > 20 and p8["argmax_changed"] == len(want)
    assert p8["flips_within_rounding"] == len(want) and p8["flips_suspect"] == 0
    assert [f["row"] for f in p8["flips"]] == want[:len(p8["flips"])].tolist() and len(p8["flips"]) == min(50, len(want))
    assert all(f["pair_change"] <= f["rounding_bound"] and f["margin_b1"] <= f["rounding_bound"] for f in p8["flips"])
    assert "first-order bound through 1 operations" in p8["rounding_bound"] and p8["beyond_rounding"] == 0


def planted(model, forward):
    """The model as batchcore reads it, with a torch module of the planted ``forward`` as its source: the
    torch backend runs that module (the other backends the read layers)."""
    torch = pytest.importorskip("torch")

    class Planted(torch.nn.Module):
        def forward(self, x):
            return forward(torch, x)

    return bc.Model(list(model.layers), model.input_width, source_module=Planted(), source_framework="torch")


def linear(torch, x, model, dtype=None):
    w = torch.from_numpy(model.layers[0].params["weight"])
    return (x.to(dtype) @ w.to(dtype).T).float() if dtype else x @ w.T


def test_a_batch_dependent_output_is_suspect_in_the_sweep():
    model = bc.mlp([32, 4], seed=3)
    x = np.random.default_rng(3).standard_normal((400, 32)).astype(np.float32)
    shifted = planted(model, lambda torch, x: linear(torch, x, model) - 0.5 * linear(torch, x, model).mean(0))
    res = sweep(shifted, x, [bc.torch(measure_memory=False)])
    p8 = next(p for p in res.points if p["batch_size"] == 8)
    assert p8["argmax_changed"] > 0 and p8["flips_suspect"] == p8["argmax_changed"]
    assert p8["beyond_rounding"] > 0


def test_a_backend_computing_in_bfloat16_is_beyond_rounding_and_float32_is_not():
    rng = np.random.default_rng(6)
    model = bc.mlp([300, 10], seed=6)
    x = rng.standard_normal((64, 300)).astype(np.float32)
    halved = planted(model, lambda torch, x: linear(torch, x, model, torch.bfloat16)
                     + torch.from_numpy(model.layers[0].params["bias"]))
    res = sweep(halved, x, [bc.torch(measure_memory=False), bc.native()])
    by = {(p["backend"], p["batch_size"]): p for p in res.points}
    assert all(by[("torch[cpu]", B)]["beyond_rounding"] > 0 for B in (1, 8))
    assert all(by[("native[seq]", B)]["beyond_rounding"] == 0 for B in (1, 8))
