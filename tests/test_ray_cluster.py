"""Sweeps and audits on a real Ray cluster of three raylets on this machine (ray.cluster_utils.Cluster): two
nodes of one kind, and one started with the kernel-choosing variables that make torch run other kernels
(AVX2 instead of AVX-512, or no SIMD where AVX-512 is absent). A grid through Ray gives the local bits; the
audit finds torch's kinds where torch's own loop, run apart with each environment, says the bits differ, and
one class for native seq; a node killed mid-grid and a driver killed mid-grid lose and duplicate nothing."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import batchcore as bc

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

# Starting raylets forks this process (then execs them); JAX, imported here by earlier tests, warns at every fork
# that a fork of its threads could deadlock, which holds for a fork that does not exec at once.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")

FAST = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)
SLOWER = bc.Timer(min_samples=3, min_time_s=0.04, warmup_s=0, timeout_s=1, target=0.5)  # a grid long enough to kill
MODEL = bc.mlp([64, 32, 10], activation="gelu", head="softmax", seed=0)
SIZES = [1, 2, 8, 64]


def other_kernels():
    """Environment variables that make torch choose other kernels on this CPU."""
    with open("/proc/cpuinfo") as f:
        avx512 = " avx512f" in f.read()
    return ({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"} if avx512 else
            {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"})


@pytest.fixture(scope="module")
def cluster():
    # The driver's environment must not name a cluster of its own (RAY_ADDRESS): the executor would join it.
    os.environ.pop("RAY_ADDRESS", None)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    twin = c.add_node(num_cpus=2)
    other = c.add_node(num_cpus=1, env_vars=other_kernels())
    c.wait_for_nodes()
    yield c, c.head_node.node_id, twin.node_id, other.node_id
    ray.shutdown()
    c.shutdown()


def fingerprints(res):
    return {(p["backend"], p["batch_size"]): p["fingerprint"] for p in res.points}


def point_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [line for line in f.read().split(b"\n")[:-1] if b'"type": "point"' in line]


def keys(lines):
    return [(json.loads(line)["backend"], json.loads(line)["batch_size"]) for line in lines]


def test_a_grid_through_ray_gives_the_local_bits_and_records_its_nodes(cluster, tmp_path):
    c, head, twin, _ = cluster
    backends = [bc.native(), bc.numpy(), bc.torch(measure_memory=False)]
    local = bc.sweep(MODEL, SIZES, backends, rows=64, timing=False, progress=False)
    executor = bc.ray_executor(address=c.address, nodes=[head, twin])
    res = bc.sweep(MODEL, SIZES, backends, rows=64, timer=FAST, rounds=2, ceilings=False, progress=False,
                   executor=executor, out=tmp_path / "log.jsonl")
    assert fingerprints(res) == fingerprints(local)
    assert sorted(keys(point_lines(tmp_path / "log.jsonl"))) == sorted(fingerprints(local))
    assert set(res.env["nodes"]) == {head, twin} and res.env["executor"] == "ray"
    kinds = {identity["kind"] for identity in res.env["nodes"].values()}
    assert len(kinds) == 1
    for p in res.points:
        assert p["node"]["timing"] in (head, twin) and p["node"]["bits"] == p["node"]["bits_b1"] in (head, twin)
        assert p["node"]["kind"] in kinds
        assert p["placement"] == {"executor": "ray", "timed_per_node": 1, "reserves": "1/1 of its node's CPUs",
                                  "max_retries": 3, "omp_num_threads": "its node's CPUs / timed_per_node"}
        # Ray starts its workers with OMP_NUM_THREADS=1; each cell's worker has its node's 2 instead (a BLAS reads it once)
        assert p["node"]["thread_environment"]["OMP_NUM_THREADS"] == "2"
    assert {p["node"]["timing"] for p in res.points} == {head, twin}  # both nodes timed
    # A rerun with the same log measures nothing again.
    again = bc.sweep(MODEL, SIZES, backends, rows=64, timer=FAST, rounds=2, ceilings=False, progress=False,
                     executor=executor, out=tmp_path / "log.jsonl")
    assert fingerprints(again) == fingerprints(local) and len(point_lines(tmp_path / "log.jsonl")) == len(local.points)


def test_a_sweep_over_two_machine_kinds_is_refused(cluster):
    c, *_ = cluster
    with pytest.raises(bc.ArgumentError, match="2 machine kinds .* ATEN_CPU_CAPABILITY=.*bc.audit"):
        bc.sweep(MODEL, SIZES, [bc.native()], rows=64, timing=False, progress=False,
                 executor=bc.ray_executor(address=c.address))


TORCH_LOOP = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np, torch
    import batchcore as bc
    from batchcore.backends import module_on
    model = bc.mlp([64, 32, 10], activation="gelu", head="softmax", seed=0)
    net = module_on(model, "cpu").eval()
    torch.set_num_threads(int(sys.argv[2]))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32))
    out = {}
    with torch.no_grad():
        for b in json.loads(sys.argv[1]):
            y = torch.cat([net(x[i:i + b]) for i in range(0, 64, b)]).numpy()
            out[b] = hashlib.sha256(y.tobytes()).hexdigest()
    print(json.dumps(out))
""")


def torch_loop(env, threads):
    """torch's own loop in a process of its own under ``env``: the SHA-256 of all outputs per batch size."""
    done = subprocess.run([sys.executable, "-c", TORCH_LOOP, json.dumps(SIZES), str(threads)], capture_output=True,
                          text=True, env={**os.environ, **env}, check=True, timeout=120)
    return {int(b): h for b, h in json.loads(done.stdout).items()}


def test_an_audit_finds_torchs_kinds_where_its_bits_really_differ_and_one_class_for_native_seq(cluster, tmp_path):
    c, head, twin, other = cluster
    torch_backend = bc.torch(measure_memory=False)
    audit = bc.audit(MODEL, batch_sizes=SIZES, backends=[torch_backend, bc.native()], rows=64, progress=False,
                     executor=bc.ray_executor(address=c.address), ship_outputs=True)
    assert set(audit.nodes) == {head, twin, other} and len(audit.kinds) == 2
    assert audit.nodes[other]["kernel_environment"].items() >= other_kernels().items()
    # The truth, from torch's own loop in two processes: the environment changes torch's bits here.
    plain, changed = torch_loop({}, torch_backend.threads), torch_loop(other_kernels(), torch_backend.threads)
    differs = [B for B in SIZES if plain[B] != changed[B]]
    assert differs, "the other kernels gave torch's bits at every batch size here: the audit would test nothing"
    for B in SIZES:
        groups = sorted(map(sorted, audit.groups(torch_backend.label, B)))
        assert groups == (sorted([sorted([head, twin]), [other]]) if B in differs else [sorted([head, twin, other])])
        assert audit.groups("native[seq]", B) == [list(audit.nodes)]
    far = audit.distances[torch_backend.label][differs[0]]
    assert far and far[0]["elements_differ"] > 0 and far[0]["max_ulp"] > 0
    assert "native[seq]: one class on every node at every B" in audit.summary()
    assert f"{torch_backend.label}: " in audit.summary() and "ULP" in audit.summary()
    audit.to_json(tmp_path / "audit.json")
    again = bc.Audit.from_json(tmp_path / "audit.json")
    assert again.table() == audit.table() and again.groups("native[seq]", 8) == audit.groups("native[seq]", 8)


def test_a_worker_node_killed_mid_grid_loses_and_duplicates_nothing(cluster, tmp_path):
    c, head, *_ = cluster
    victim = c.add_node(num_cpus=2)
    c.wait_for_nodes()
    backends, sizes = [bc.native(), bc.numpy()], [1, 2, 3, 4, 5, 6, 7, 8]
    local = bc.sweep(MODEL, sizes, backends, rows=64, timing=False, progress=False)
    log, found = tmp_path / "log.jsonl", {}

    def run():
        found["res"] = bc.sweep(MODEL, sizes, backends, rows=64, timer=SLOWER, rounds=2, ceilings=False, progress=False,
                                executor=bc.ray_executor(address=c.address, nodes=[head, victim.node_id]), out=log)

    sweeping = threading.Thread(target=run)
    sweeping.start()
    deadline = time.monotonic() + 120
    while not point_lines(log) and sweeping.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    before = point_lines(log)
    assert sweeping.is_alive() and 1 <= len(before) < 16, "the grid ended before the node was killed"
    c.remove_node(victim)
    sweeping.join(timeout=300)
    res = found["res"]
    assert res.not_measured == [] and fingerprints(res) == fingerprints(local)
    final = point_lines(log)
    assert final[:len(before)] == before and len(keys(final)) == len(set(keys(final))) == 16
    after = [json.loads(line) for line in final[len(before):]]
    assert after and all(p["node"]["timing"] == head for p in after)


DRIVER = textwrap.dedent("""
    import sys
    import batchcore as bc
    timer = bc.Timer(min_samples=3, min_time_s=0.04, warmup_s=0, timeout_s=1, target=0.5)
    bc.sweep(bc.mlp([64, 32, 10], activation="gelu", head="softmax", seed=0), [1, 2, 3, 4, 5, 6, 7, 8],
             [bc.native(), bc.numpy()], rows=64, timer=timer, rounds=2, ceilings=False, progress=False,
             executor=bc.ray_executor(address=sys.argv[2], nodes=[sys.argv[3]]), out=sys.argv[1])
""")


def test_a_driver_killed_mid_grid_resumes_from_its_log(cluster, tmp_path):
    c, head, *_ = cluster
    script, log = tmp_path / "driver.py", str(tmp_path / "log.jsonl")
    script.write_text(DRIVER)
    command = [sys.executable, str(script), log, c.address, head]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not point_lines(log) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the driver ended (exit {proc.returncode}) before it was killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    kept = point_lines(log)
    assert 1 <= len(kept) < 16
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    final = point_lines(log)
    assert final[:len(kept)] == kept and len(keys(final)) == len(set(keys(final))) == 16


def test_the_reservation_refuses_a_backend_that_would_share_cores():
    executor = bc.ray_executor(timed_per_node=2)  # nothing connects until a sweep runs
    assert executor.reserved_cpus(bc.native(threads=1), 2) == 1
    with pytest.raises(bc.ArgumentError, match="two timed cells would share cores"):
        executor.reserved_cpus(bc.native(threads=2), 2)
    with pytest.raises(bc.ArgumentError, match="nodes must be 'all' or a list of Ray node ids"):
        bc.ray_executor(nodes="head")


def test_without_ray_the_executor_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as where it is not installed
    with pytest.raises(bc.MissingDependencyError, match=r"pip install 'batchcore\[ray\]'"):
        bc.ray_executor()


LOCAL_FIRST = textwrap.dedent("""
    import json, sys
    import batchcore as bc
    assert "ray" not in sys.modules  # import batchcore imports no Ray
    model = bc.mlp([64, 32, 10], activation="gelu", head="softmax", seed=0)
    backends = [bc.native(), bc.numpy()]
    here = bc.sweep(model, [1, 8], backends, rows=64, timing=False, progress=False)
    there = bc.sweep(model, [1, 8], backends, rows=64, timing=False, progress=False,
                     executor=bc.ray_executor(num_cpus=2))
    print(json.dumps([[p["fingerprint"] for p in r.points] for r in (here, there)] + [len(there.env["nodes"])]))
""")


@pytest.mark.slow
def test_without_a_cluster_the_executor_starts_a_local_ray():
    # RAY_ADDRESS=local: a new local instance, not the cluster another test may have started on this machine
    # (Ray's default, as a user's, joins the latest cluster started here)
    env = {**os.environ, "RAY_ADDRESS": "local"}
    done = subprocess.run([sys.executable, "-c", LOCAL_FIRST], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    here, there, nodes = json.loads(done.stdout.strip().splitlines()[-1])
    assert here == there and nodes == 1
