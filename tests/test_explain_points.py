"""bc.sweep(..., explain=True) (batchcore/explain/points.py): each point carries the tree its backend used for
the first linear layer at its batch size, and SweepResult.why() groups the batch sizes by tree."""

import numpy as np
import pytest

import batchcore as bc

QUICK = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)


def test_the_library_like_policy_is_explained_by_its_trees():
    model = bc.mlp([96, 32, 5], seed=1)
    res = bc.sweep(model, [1, 2, 8, 130], backends=[bc.native(policy="library-like", threads=1), bc.native(threads=1)],
                   timer=QUICK, rounds=1, progress=False, ceilings=False, explain=True)
    by_b = {(p["backend"], p["batch_size"]): p["explain"] for p in res.points}
    assert [by_b[("native[library-like]", B)]["tree"] for B in (1, 2, 8, 130)] == ["lanes:16", "seq", "seq", "splitk:4"]
    assert all(e["fixed"] and e["K"] == 96 and e["N"] == 32 and e["layer"] == "layer 0" for e in by_b.values())
    said = res.why().splitlines()
    assert said[0] == ("native[library-like], layer 0 (K = 96): 3 trees; B = 1: lanes:16; B = 2, 8: seq; "
                       "B = 130: splitk:4")
    assert said[1] == "native[seq], layer 0 (K = 96): one tree at every batch size: seq"
    # the trees are the cause of the classes: one class per tree here
    assert [len(c) for c in [g for label, g in res.classes().items() if label == "native[library-like]"][0]] == [1, 2, 1]


def test_what_cannot_be_explained_says_why():
    plain = bc.sweep(bc.mlp([8, 4], seed=2), [1, 2], backends=[bc.native()], timer=QUICK, rounds=1, progress=False,
                     ceilings=False)
    assert plain.why() == "no point was explained: run the sweep with explain=True"
    with pytest.raises(bc.ArgumentError, match="explain must be True or False"):
        bc.sweep(bc.mlp([8, 4], seed=2), [1], backends=[bc.native()], timer=QUICK, explain="yes")
    torch = pytest.importorskip("torch")

    class Doubling(torch.nn.Module):  # a module from_torch cannot read: run as it is
        def forward(self, x):
            return torch.cat([x, x.flip(0)], dim=1)

    res = bc.sweep(Doubling(), [1, 2], backends=[bc.torch(measure_memory=False)], data=np.ones((4, 3), np.float32),
                   timer=QUICK, rounds=1, progress=False, explain=True)
    assert "a module run as it is" in res.why()


def test_a_silent_precision_change_is_said_beside_the_trees():
    """A backend whose first linear layer computed in bfloat16 (a stand-in library rounding its inputs, as
    oneDNN's bf16 fpmath mode does) is said to be not float32 at its batch size; float32 backends are not."""
    from batchcore.explain.points import explain_points, why
    from test_precision import ReducedLibrary

    model = bc.mlp([96, 8, 3], seed=4)
    reduced = ReducedLibrary(8)
    reduced.label = "bf16-inputs"
    points = [{"backend": b.label, "batch_size": B} for b in (reduced, bc.native()) for B in (1, 4)]
    explain_points(points, [reduced, bc.native()], model)
    assert [p["explain"]["float32"] for p in points] == [False, False, True, True]
    said = why(points).splitlines()
    assert said[-2:] == [f"bf16-inputs at B = {B} is not float32: {points[0]['explain']['precision_cause']}" for B in (1, 4)]
    assert "bfloat16" in said[-1] and not any("native[seq] at" in line for line in said)


def test_the_log_keeps_each_points_explanation_and_a_resumed_run_does_not_reveal_again(tmp_path):
    import json

    model, log = bc.mlp([40, 8, 3], seed=7), tmp_path / "run.jsonl"
    run = dict(backends=[bc.native(policy="library-like", threads=1)], timer=QUICK, rounds=1, progress=False,
               ceilings=False, explain=True, out=log)
    first = bc.sweep(model, [1, 2], **run)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["type"] for r in lines] == ["header", "point", "point", "explain", "explain"]
    read = bc.SweepResult.from_json(log)
    assert [p["explain"] for p in read.points] == [p["explain"] for p in first.points]
    assert read.why() == first.why()
    bc.sweep(model, [1, 2], **run)  # resumed: every point and its explanation already logged
    assert len(log.read_text().splitlines()) == 5
    log.write_text("\n".join([*log.read_text().splitlines()[:1], json.dumps(lines[3])]) + "\n")
    with pytest.raises(bc.ResultFileError, match="line 2 explains no point before it"):
        bc.SweepResult.from_json(log)
