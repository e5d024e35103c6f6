"""Cells as Ray tasks: ``bc.ray_executor()``, on a cluster or a local Ray instance.

Ray does the scheduling, the shipping and the retries; this file only says what a cell reserves and where
it may go. A cell is pinned to its node (node affinity, hard); a timed CPU cell reserves its node's CPUs
divided by ``timed_per_node`` (all of them by default), so Ray itself never runs another cell on those
cores while it times; a timed GPU cell reserves its GPU. Cells of outputs reserve one CPU and pack as
tightly as the node's CPUs allow. The model and data go into the object store once per sweep, by digest.
Ray is imported only here, only when an executor is made.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable
from typing import Any

from ..backends import Backend
from ..errors import ArgumentError, MissingDependencyError
from ..info import kind_name
from . import cells
from .executors import CellExecutor


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("bc.ray_executor needs Ray: pip install 'batchcore[ray]'") from None
    return ray


class RayExecutor(CellExecutor):
    """Cells as Ray tasks (see :func:`ray_executor`)."""

    name = "ray"
    timed_in_flight = None

    def __init__(self, address: str | None, nodes: Any, timed_per_node: int, max_retries: int,
                 init_options: dict[str, Any]):
        self.ray = import_ray()
        self.address, self.max_retries, self.init_options = address, max_retries, init_options
        self.timed_per_node = timed_per_node
        self.chosen = nodes
        self._remote: dict[Callable[..., Any], Any] = {}
        self._shared: dict[str, cells.SharedPayload] = {}
        self._identity: dict[str, dict[str, Any]] = {}
        self._cpus: dict[str, float] = {}
        self._turn = itertools.count()

    def connect(self) -> Any:
        """Ray, connected as :func:`ray_executor` says (an existing connection is used)."""
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, **{"log_to_driver": False, **self.init_options})
        return self.ray

    def alive(self) -> dict[str, float]:
        """The cluster's nodes that are up and have CPUs, by id: their CPU count as Ray schedules them."""
        return {n["NodeID"]: float(n["Resources"].get("CPU", 0)) for n in self.connect().nodes()
                if n.get("Alive") and n["Resources"].get("CPU", 0) > 0}

    def nodes(self, strict: bool = True, chosen: Any = None) -> dict[str, dict[str, Any]]:
        """The chosen nodes (``chosen``, default the executor's ``nodes=``) that are up, by id: each one's
        machine identity, asked of the node once (a task pinned there). ``strict``: a chosen node that is
        not up is an error."""
        chosen = self.chosen if chosen is None else chosen
        up = self.alive()
        wanted = list(up) if chosen == "all" else [n for n in chosen if n in up]
        if strict and chosen != "all" and (gone := [n for n in chosen if n not in up]):
            raise ArgumentError(f"nodes={gone!r}: no such node is up in the Ray cluster (up: {sorted(up)})")
        ask = [n for n in wanted if n not in self._identity]
        answers = self.connect().get([self._task(cells.identify, n, num_cpus=0).remote() for n in ask])
        for n, answer in zip(ask, answers, strict=True):
            self._identity[n] = answer["identity"]
        self._cpus.update(up)
        return {n: self._identity[n] for n in wanted}

    def identities(self) -> dict[str, dict[str, Any]]:
        return dict(self._identity)

    def kinds(self, nodes: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
        """The nodes grouped by machine kind (digest -> node ids), in the order first seen."""
        out: dict[str, list[str]] = {}
        for n, identity in nodes.items():
            out.setdefault(identity["kind"], []).append(n)
        return out

    def share(self, payload: Any) -> Any:
        if payload.digest not in self._shared:
            self._shared[payload.digest] = cells.SharedPayload(payload.digest, self.connect().put(payload))
        return self._shared[payload.digest]

    def nodes_for(self, backends: list[Backend], timing: bool) -> list[str | None]:
        nodes = self.nodes()
        if not nodes:
            raise ArgumentError("the Ray cluster has no node with CPUs up")
        kinds = self.kinds(nodes)
        if len(kinds) > 1:
            said = "; ".join(f"{kind_name(nodes[ids[0]])}: {len(ids)} node(s)" for ids in kinds.values())
            raise ArgumentError(f"the chosen nodes are of {len(kinds)} machine kinds ({said}); a sweep compares the bits of "
                                "one kind of machine: pass ray_executor(nodes=[...]) of one kind, or bc.audit(...) to "
                                "compare the kinds")
        if timing:
            for b in backends:
                self.reserved_cpus(b, min(self._cpus[n] for n in nodes))  # refuses a backend no node can time alone
        return list(nodes)

    def reserved_cpus(self, backend: Backend, node_cpus: float) -> float:
        """The CPUs a timed cell of ``backend`` reserves on a node of ``node_cpus``: its share of the node
        (``node_cpus / timed_per_node``), which must hold the backend's threads."""
        share = float(int(node_cpus) // self.timed_per_node)
        threads = backend.settings().get("threads") or 1
        if share < threads:
            raise ArgumentError(f"{backend.label} times with {threads} threads, and a node of {node_cpus:g} CPUs holds "
                                f"{self.timed_per_node} timed cell(s) of {share:g} CPUs: two timed cells would share cores; "
                                "pass threads= or a smaller timed_per_node")
        return share

    def _task(self, fn: Callable[..., Any], node: str, num_cpus: float, num_gpus: float = 0,
              threads: int | None = None) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(fn)
        # Ray starts its workers with OMP_NUM_THREADS set to the first task's CPUs (1), and a BLAS reads it once,
        # when it loads: NumPy's OpenBLAS would time on one thread of a node reserved whole. Every cell's worker
        # gets the thread count of a timed cell's share of its node instead, as a run on that node alone would.
        env = {"runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(threads)}}} if threads else {}
        return self._remote[fn].options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=self.max_retries,
                                        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False), **env)

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], node: str | None, backend: Backend,
               timed: bool) -> concurrent.futures.Future[Any]:
        if node is None:
            raise ArgumentError("a Ray cell needs its node")  # pragma: no cover - the driver always names one
        cpus, gpus = self._reservation(backend, timed, node)
        threads = max(1, int(self._cpus[node]) // self.timed_per_node)
        future: concurrent.futures.Future[Any] = self._task(fn, node, cpus, gpus, threads).remote(*args).future()
        return future

    def _reservation(self, backend: Backend, timed: bool, node: str) -> tuple[float, float]:
        on_gpu = backend.settings()["device"] != "cpu"
        if not timed:
            return 1, 1 if on_gpu else 0
        return (1, 1) if on_gpu else (self.reserved_cpus(backend, self._cpus[node]), 0)

    def placement(self, backend: Backend, timed: bool) -> dict[str, Any]:
        on_gpu = backend.settings()["device"] != "cpu"
        return {"executor": "ray", "timed_per_node": self.timed_per_node, "reserves": "its GPU" if on_gpu else
                f"1/{self.timed_per_node} of its node's CPUs", "max_retries": self.max_retries,
                "omp_num_threads": "its node's CPUs / timed_per_node"}

    def lost(self, error: BaseException) -> bool:
        gone = (self.ray.exceptions.TaskUnschedulableError, self.ray.exceptions.NodeDiedError)
        return isinstance(error, gone) or isinstance(getattr(error, "cause", None), gone)

    def replacement(self, node: str | None) -> str | None:
        kind = self._identity.get(node or "", {}).get("kind")
        same = [n for n, identity in self.nodes(strict=False).items() if n != node and identity["kind"] == kind]
        return same[next(self._turn) % len(same)] if same else None

    def cause(self, error: BaseException) -> BaseException:
        cause = getattr(error, "cause", None)
        return cause if isinstance(cause, BaseException) and isinstance(error, self.ray.exceptions.RayTaskError) else error


def ray_executor(address: str | None = None, nodes: Any = "all", timed_per_node: int = 1, max_retries: int = 3,
                 **init_options: Any) -> RayExecutor:
    """Run a sweep's cells as Ray tasks: ``bc.sweep(..., executor=bc.ray_executor())``, ``bc.audit(...)``.

    address: the cluster (``"auto"``: the one this machine joined with ``ray start``; ``"ray://host:10001"``: a
    remote one through Ray Client; ``"local"``: always a new local Ray instance); None: Ray's own default (the
    cluster this process joined, else ``$RAY_ADDRESS``, else the latest cluster started on this machine, else a
    new local instance). nodes: ``"all"`` (every node with CPUs) or a list of Ray node ids.
    timed_per_node: how many timed cells a node runs at once (each reserves that share of its CPUs;
    default 1: a timed cell has its node to itself). max_retries: Ray's own retries of a cell whose worker
    died. init_options: passed to ``ray.init`` (e.g. ``runtime_env={"pip": ["batchcore"]}``). Needs the
    ``ray`` extra (MissingDependencyError without it). Nothing connects until a sweep runs."""
    from .. import checks

    timed_per_node = checks.positive_int(timed_per_node, "timed_per_node")
    max_retries = checks.positive_int(max_retries + 1, "max_retries + 1") - 1
    return RayExecutor(address, check_nodes(nodes), timed_per_node, max_retries, init_options)


def check_nodes(nodes: Any) -> Any:
    """``"all"``, or a list of Ray node ids (strings); ArgumentError for anything else."""
    if nodes == "all":
        return nodes
    if isinstance(nodes, (str, bytes)) or not hasattr(nodes, "__iter__") or not all(isinstance(n, str) for n in nodes):
        raise ArgumentError(f"nodes must be 'all' or a list of Ray node ids, got {nodes!r}")
    return list(nodes)
