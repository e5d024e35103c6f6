"""The fleet audit's result (batchcore.results.audit) on digests made here: groups of nodes with identical
rows, the share of rows that differ, each node's batch-size classes, the words, the table, the JSON file and
the report's section; a file that is not an audit is named."""

import hashlib
import json

import numpy as np
import pytest

import batchcore as bc
from batchcore import report


def identity(kind, env=None):
    return {"kind": kind, "cpu_identity": {"model name": f"CPU {kind}", "cpu family": "6", "model": "1"},
            "kernel_environment": env or {}, "gpus": []}


ROWS = [f"{i:064x}" for i in range(10)]
OTHER = ROWS[:4] + [f"{i:064x}" for i in range(100, 106)]  # rows 4..9 differ: 60 %


def made():
    nodes = {"n1": identity("k1"), "n2": identity("k1"), "n3": identity("k2", {"ATEN_CPU_CAPABILITY": "avx2"})}
    digests = {"torch[cpu]": {1: {"n3": OTHER, "n1": ROWS, "n2": ROWS}, 8: {"n1": OTHER, "n2": OTHER, "n3": OTHER}},
               "native[seq]": {1: {n: ROWS for n in nodes}, 8: {n: ROWS for n in nodes}}}
    distances = {"torch[cpu]": {1: [{"group": 1, "nodes": ["n3"], "elements_differ": 0.62, "max_ulp": 8}], 8: []}}
    return bc.Audit(nodes, digests, distances, config={"batch_sizes": [1, 8]})


def test_groups_shares_and_classes_follow_the_digests():
    audit = made()
    assert audit.kinds == {"k1": ["n1", "n2"], "k2": ["n3"]}
    assert audit.groups("torch[cpu]", 1) == [["n1", "n2"], ["n3"]]  # in the nodes' order, whatever came first
    assert audit.groups("torch[cpu]", 8) == [["n1", "n2", "n3"]]
    assert audit.rows_differ("torch[cpu]", 1) == [0.6]
    assert audit.classes("torch[cpu]", "n1") == [[1], [8]] and audit.classes("torch[cpu]", "n3") == [[1, 8]]
    assert audit.classes("native[seq]", "n2") == [[1, 8]]
    with pytest.raises(bc.ArgumentError, match="no cell torch\\[cpu\\] at B=2"):
        audit.groups("torch[cpu]", 2)


def test_the_words_and_the_table_say_which_kinds_agree():
    audit = made()
    said = audit.summary().splitlines()
    assert said[0] == ("torch[cpu]: at B=1 2 groups: Ax2 | Bx1 (62 % of elements differ, up to 8 ULP); "
                       "at B=8 every node agrees")
    assert said[1] == "native[seq]: one class on every node at every B"
    lines = audit.table().splitlines()
    assert lines[1].split() == ["torch[cpu]", "1", "Ax2", "|", "Bx1", "60.0", "%", "62.0", "%", "8"]
    assert lines[2].split()[:3] == ["torch[cpu]", "8", "Ax2"] and "Bx1" in lines[2]
    assert lines[-1] == ("kinds: A = CPU k1 (6/1) [k1], 2 node(s); B = CPU k2 (6/1) ATEN_CPU_CAPABILITY=avx2 [k2], "
                         "1 node(s)")


def test_an_audit_goes_to_json_and_into_the_report(tmp_path):
    audit = made()
    path = tmp_path / "audit.json"
    audit.to_json(path)
    again = bc.Audit.from_json(path)
    assert again.digests == audit.digests and again.nodes == audit.nodes and again.table() == audit.table()
    page = report.render([path])
    assert "Fleet audit" in page and "62 % of elements differ, up to 8 ULP" in page and "ATEN_CPU_CAPABILITY=avx2" in page


def test_a_file_that_is_not_an_audit_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"type": "audit", "nodes": {}}))
    with pytest.raises(bc.ResultFileError, match="bad.json is not a batchcore audit"):
        bc.Audit.from_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(bc.ResultFileError, match="not a batchcore audit"):
        bc.Audit.from_json(path)
    with pytest.raises(bc.ResultFileError, match="cannot read"):
        bc.Audit.from_json(tmp_path / "missing.json")


def test_a_node_lost_during_an_audit_is_reported_and_no_other_stands_in():
    import concurrent.futures

    pytest.importorskip("ray")
    from batchcore.run.ray_cluster import RayExecutor

    class Lost(Exception):
        pass

    class TwoNodes(RayExecutor):
        """Cells run here; node n2 is lost."""

        def nodes(self, strict=True, chosen=None):
            return {"n1": identity("k1"), "n2": identity("k1")}

        def share(self, payload):
            return payload

        def submit(self, fn, args, node, backend, timed):
            future = concurrent.futures.Future()
            future.set_exception(Lost()) if node == "n2" else future.set_result(fn(*args))
            return future

        def lost(self, error):
            return isinstance(error, Lost)

    model = bc.mlp([12, 6, 3], seed=1)
    audit = bc.audit(model, batch_sizes=[1, 4], backends=[bc.native()], rows=16, progress=False,
                     executor=TwoNodes(None, "all", 1, 3, {}))
    assert audit.groups("native[seq]", 4) == [["n1"]]
    assert sorted((m["node"], m["batch_size"]) for m in audit.not_measured) == [("n2", 1), ("n2", 4)]
    assert all(m["reason"] == "the node was lost (Lost)" for m in audit.not_measured)
    assert "not measured: native[seq] at B=4 on n2" in audit.table()
    x = np.random.default_rng(0).standard_normal((16, 12), dtype=np.float32)
    rows = bc.native().run_batched(model, x, 4)  # the digests are of the rows the audit drew with seed 0
    assert audit.digests["native[seq]"][4]["n1"] == [hashlib.sha256(r.tobytes()).hexdigest() for r in rows]


def test_an_audit_needs_a_ray_executor_and_nodes_by_id():
    with pytest.raises(bc.ArgumentError, match="executor must be bc.ray_executor"):
        bc.audit(bc.mlp([4, 2]), backends=[bc.native()], rows=8, batch_sizes=[1], executor="local")
    pytest.importorskip("ray")
    for bad in (5, "n1", [1, 2]):
        with pytest.raises(bc.ArgumentError, match="nodes must be 'all' or a list of Ray node ids"):
            bc.audit(bc.mlp([4, 2]), backends=[bc.native()], rows=8, batch_sizes=[1], nodes=bad,
                     executor=bc.ray_executor())
