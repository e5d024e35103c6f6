"""``bc.audit()``: the same outputs computed on every node of a Ray cluster, compared across machines.

Every node computes every backend's outputs at every batch size (a cell pinned to it), and sends back the
SHA-256 of each row's bits; the driver groups the nodes whose rows all agree. With ``ship_outputs=True``
the outputs travel too, once per group, and the driver measures how far each group is from the first
(share of differing elements, largest ULP distance). A node lost during the audit is reported with its
cells as not measured: an audit asks about that very node, so no other node stands in for it.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import checks
from ..backends import Backend
from ..errors import ArgumentError
from ..info import info
from ..model.opaque import OpaqueModel
from ..present.progress import Steps
from ..results import numerics
from ..results.audit import Audit
from . import cells
from .plan import check_backends, check_batch_sizes
from .ray_cluster import RayExecutor, check_nodes, ray_executor
from .sweep import DEFAULT_BATCH_SIZES, default_backends, resolve_data, resolve_model
from .workloads import ModelWork, ModuleWork


def audit(model: Any, data: Any = None, batch_sizes: Iterable[int] = DEFAULT_BATCH_SIZES,
          backends: Iterable[Backend] | None = None, executor: RayExecutor | None = None, nodes: Any = "all",
          ship_outputs: bool = False, rows: int | None = None, seed: int = 0, progress: bool | None = None) -> Audit:
    """Does the model give the same bits on every node, at every batch size? (see :class:`batchcore.results.audit.Audit`)

    model, data, rows, seed: as :func:`batchcore.sweep` takes them. backends: default native seq, numpy and
    torch where installed. executor: ``bc.ray_executor(...)`` (default: a local Ray instance, or the cluster
    this process joined). nodes: ``"all"`` or a list of Ray node ids (default all the executor's nodes).
    ship_outputs: also send the outputs back (once per group of identical nodes) and measure the ULP
    distance between groups. Nothing is timed: an audit is about bits."""
    sizes = check_batch_sizes(batch_sizes)
    if 1 not in sizes:
        sizes = [1, *sizes]
    chosen = default_backends("cpu") if backends is None else check_backends(backends)
    model = resolve_model(model, chosen, data, required=backends is not None)
    if backends is None:
        chosen = [b for b in chosen if b.runs(model)]
    ex = ray_executor() if executor is None else executor
    if not isinstance(ex, RayExecutor):
        raise ArgumentError(f"an audit places cells on every node of a cluster: executor must be bc.ray_executor(...), "
                            f"got {executor!r}")
    checks.flag(ship_outputs, "ship_outputs")
    work = (ModuleWork(model, data, None, sizes) if isinstance(model, OpaqueModel) else
            ModelWork(model, resolve_data(model, data, rows, seed, sizes), None, chosen, False, False))
    found = ex.nodes(chosen=ex.chosen if check_nodes(nodes) == "all" else nodes)
    if not found:
        raise ArgumentError("the Ray cluster has none of the chosen nodes up")
    box = ex.share(work.payload)
    digests: dict[str, dict[int, dict[str, list[str]]]] = {b.label: {B: {} for B in sizes} for b in chosen}
    shipped: dict[tuple[str, int, str], Any] = {}
    not_measured: list[dict[str, Any]] = []
    flying: dict[concurrent.futures.Future[Any], tuple[Backend, int, str]] = {}
    with Steps("audit", len(found) * len(chosen) * len(sizes), progress) as steps:
        for node in found:
            for b in chosen:
                for B in sizes:
                    args = (box, b.settings(), B, ship_outputs, True)
                    flying[ex.submit(cells.outputs_cell, args, node, b, timed=False)] = (b, B, node)
        for future in concurrent.futures.as_completed(flying):
            b, B, node = flying[future]
            steps.done()
            try:
                result = future.result()
            except Exception as e:
                if not ex.lost(e):
                    raise ex.cause(e) from None
                not_measured.append({"backend": b.label, "batch_size": B, "node": node,
                                     "reason": f"the node was lost ({type(e).__name__})"})
                continue
            if ship_outputs:
                shipped[(b.label, B, node)], digests[b.label][B][node] = result.value
            else:
                digests[b.label][B][node] = result.value
    config = {**work.config, "batch_sizes": sizes, "backends": [b.settings() for b in chosen], "ship_outputs": ship_outputs}
    found_audit = Audit({n: found[n] for n in found}, digests, {}, not_measured, config, {**info(), "executor": "ray"})
    if ship_outputs:
        found_audit.distances = _distances(found_audit, shipped)
    return found_audit


def _distances(result: Audit, shipped: dict[tuple[str, int, str], Any]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Per backend and batch size: each group after the first against the first (a float32 array's
    elements; a module's several outputs, its first floating one)."""
    out: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for label, by_size in result.digests.items():
        for B in by_size:
            groups = result.groups(label, B)
            first = _array(shipped[(label, B, groups[0][0])])
            if first is None:
                continue
            out.setdefault(label, {})[B] = [
                {"group": i + 1, "nodes": g, "elements_differ": 1 - numerics.bitwise_equal_frac(other, first),
                 "max_ulp": numerics.max_ulp(other, first)}
                for i, g in enumerate(groups[1:]) if (other := _array(shipped[(label, B, g[0])])) is not None]
    return out


def _array(y: Any) -> Any:
    if isinstance(y, np.ndarray):
        return y
    floating = [o.values for o in y if o.values.dtype == np.float32]
    return floating[0] if floating else None
