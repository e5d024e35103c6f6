"""The driver of a sweep through an executor (batchcore.run.distributed), checked deterministically: cells run
in this process behind an executor that loses a node at a chosen cell. Every point is recorded once, with
the bits of the local run; a lost node's cells move to a node of its kind or are reported not measured; a
rerun with the same log measures only what is missing. The same for any concurrent.futures pool, whose
timed cells never overlap."""

import concurrent.futures
import json

import numpy as np
import pytest

import batchcore as bc
from batchcore.run.executors import CellExecutor, PoolExecutor, as_cell_executor

FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
MODEL = bc.mlp([24, 16, 5], activation="gelu", head="softmax", seed=3)
SIZES = [1, 2, 3, 5, 8]
BACKENDS = [bc.native(), bc.native(order="splitk:4"), bc.numpy()]


class Lost(Exception):
    """What the fake cluster raises for a cell sent to a node it lost."""


class FakeCluster(CellExecutor):
    """Cells computed here at once; node ``victim`` is lost when the ``lose_at``-th cell is sent (that cell and
    every later one sent there fail); ``spare``: whether a node of the victim's kind is left."""

    name = "fake"
    timed_in_flight = None

    def __init__(self, nodes=("n1", "n2"), victim=None, lose_at=None, spare=True):
        self.all, self.victim, self.lose_at, self.spare = list(nodes), victim, lose_at, spare
        self.sent, self.dead, self.failed = 0, set(), []

    def nodes_for(self, backends, timing):
        return list(self.all)

    def submit(self, fn, args, node, backend, timed):
        self.sent += 1
        if self.sent == self.lose_at:
            self.dead.add(self.victim)
        future = concurrent.futures.Future()
        if node in self.dead:
            self.failed.append((backend.label, args[2], timed))
            future.set_exception(Lost(node))
            return future
        result = fn(*args)
        result.node = node
        future.set_result(result)
        return future

    def lost(self, error):
        return isinstance(error, Lost)

    def replacement(self, node):
        left = [n for n in self.all if n not in self.dead]
        return left[0] if self.spare and left else None


def keys_of(log):
    with open(log) as f:
        return [(r["backend"], r["batch_size"]) for r in map(json.loads, f) if r["type"] == "point"]


@pytest.fixture(scope="module")
def local():
    return bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, rounds=2, ceilings=False, progress=False)


def fingerprints(res):
    return {(p["backend"], p["batch_size"]): p["fingerprint"] for p in res.points}


@pytest.mark.parametrize("lose_at", [3, 12, 40])
def test_a_node_lost_mid_grid_moves_its_cells_to_its_kind_and_nothing_is_lost_or_written_twice(local, tmp_path, lose_at):
    out = tmp_path / "log.jsonl"
    cluster = FakeCluster(victim="n2", lose_at=lose_at)
    res = bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, rounds=2, ceilings=False, progress=False,
                   executor=cluster, out=out)
    assert cluster.failed, "the node was lost before any cell was sent there: nothing was tested"
    assert res.not_measured == []
    assert fingerprints(res) == fingerprints(local)  # every point, with the local run's bits
    keys = keys_of(out)
    assert sorted(keys) == sorted(fingerprints(local)) and len(keys) == len(set(keys))
    for p in res.points:  # whatever was measured after the loss ran on n1, and every point names its nodes
        assert set(p["node"]) == {"bits", "bits_b1", "timing", "kind", "machine", "thread_environment"}
        assert p["node"]["machine"].endswith(f"[{p['node']['kind']}]")
        assert p["placement"]["executor"] == "fake"
        assert isinstance(p["node"]["timing"], str) and p["node"]["bits"] == p["node"]["bits_b1"]  # one node each
        if (p["backend"], p["batch_size"], True) in cluster.failed:
            assert p["node"]["timing"] == "n1"
    assert [p["backend"] for p in res.points] == [p["backend"] for p in local.points]  # in the plan's order


def test_a_node_lost_with_none_of_its_kind_left_is_reported_and_a_rerun_measures_the_rest(local, tmp_path):
    out = tmp_path / "log.jsonl"
    cluster = FakeCluster(victim="n2", lose_at=1, spare=False)
    with pytest.warns(UserWarning, match="not measured: .*no node of its machine kind is left"):
        res = bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, rounds=2, ceilings=False, progress=False,
                       executor=cluster, out=out)
    lost = {(m["backend"], m["batch_size"]) for m in res.not_measured}
    measured = {(p["backend"], p["batch_size"]) for p in res.points}
    assert lost and measured and not lost & measured and lost | measured == set(fingerprints(local))
    assert all("node n2 was lost (Lost)" in m["reason"] for m in res.not_measured)
    assert sorted(keys_of(out)) == sorted(measured)
    again = bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, rounds=2, ceilings=False, progress=False,
                     executor=FakeCluster(), out=out)
    assert fingerprints(again) == fingerprints(local)
    keys = keys_of(out)
    assert len(keys) == len(set(keys)) == len(fingerprints(local))


def test_a_cell_that_fails_on_its_own_fails_the_sweep_with_its_own_exception():
    class Failing(FakeCluster):
        def submit(self, fn, args, node, backend, timed):
            future = concurrent.futures.Future()
            future.set_exception(bc.ShapeError("planted"))
            return future

    with pytest.raises(bc.ShapeError, match="planted"):
        bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, ceilings=False, progress=False, executor=Failing())


class CountingPool(PoolExecutor):
    """A thread pool that records how many timed cells were unfinished whenever one was sent."""

    def __init__(self):
        super().__init__(concurrent.futures.ThreadPoolExecutor(4))
        self.timed, self.overlaps = [], []

    def submit(self, fn, args, node, backend, timed):
        future = super().submit(fn, args, node, backend, timed)
        if timed:
            self.overlaps.append(sum(not f.done() for f in self.timed))
            self.timed.append(future)
        return future


def test_a_pool_computes_the_local_bits_and_times_one_cell_at_a_time(local):
    pool = CountingPool()
    with pool.pool:
        res = bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timer=FAST, rounds=2, ceilings=False, progress=False,
                       executor=pool)
    assert fingerprints(res) == fingerprints(local)
    assert len(pool.timed) == 2 * len(SIZES) * len(BACKENDS) and set(pool.overlaps) == {0}
    assert all(p["time_ms"] > 0 and p["timing"]["rounds"] == 2 for p in res.points)


def test_a_bits_only_sweep_has_no_timing_and_the_same_bits(local):
    for executor in (None, concurrent.futures.ThreadPoolExecutor(2)):
        res = bc.sweep(MODEL, SIZES, BACKENDS, rows=32, timing=False, progress=False, executor=executor)
        assert fingerprints(res) == fingerprints(local)
        assert all(p["time_ms"] is None and p["peak_bytes"] is None for p in res.points)
        assert np.all([p["bitwise_equal_frac"] == q["bitwise_equal_frac"] for p, q in zip(res.points, local.points, strict=True)])


def test_an_executor_of_another_kind_is_refused():
    assert as_cell_executor(None) is None
    with pytest.raises(bc.ArgumentError, match="executor must be None, a concurrent.futures.Executor or bc.ray_executor"):
        bc.sweep(MODEL, SIZES, BACKENDS, rows=32, executor="ray")
