"""A sweep's points with their cause (``bc.sweep(..., explain=True)``): for each (backend, B), the summation
tree the backend used for the model's first linear layer at that batch size (:func:`.reveal.reveal`), so
that the classes of the bits come with the trees that made them; :func:`why` says it in words."""

from __future__ import annotations

import hashlib
from typing import Any

from ..model.chain import Model
from ..model.graph import GraphModel
from ..model.opaque import OpaqueModel
from .reveal import reveal
from .tree import draw

CHECK_ROWS = 200  # random rows each revealed tree must reproduce (bit for bit) before it is reported


def first_linear(model: Any) -> tuple[int, int, str] | None:
    """(K, N, where) of the model's first linear layer (weight N x K), or None without one."""
    if isinstance(model, Model):
        for i, layer in enumerate(model.layers):
            if layer.kind == "linear":
                n, k = layer.params["weight"].shape
                return int(k), int(n), f"layer {i}"
    if isinstance(model, GraphModel):
        for node in model.nodes:
            if node.op == "linear":
                n, k = node.params["weight"].shape
                return int(k), int(n), node.name or "graph node"
    return None


def explain_points(points: list[dict[str, Any]], backends: list[Any], model: Any) -> None:
    """Adds ``explain`` to each point: the tree of the first linear layer at its batch size on its backend
    (name or description, whether it is a fixed tree that reproduced the bits, fma or not, drawn small,
    a digest to group by, and whether the layer stayed within float32's error bound: ``float32``, with
    ``precision_cause`` when not), or why there is none."""
    layer = first_linear(model)
    by_label = {b.label: b for b in backends}
    for p in points:
        backend = by_label.get(p["backend"])
        if layer is None or backend is None:
            p["explain"] = {"why": "a module run as it is: read it (bc.from_torch, bc.from_keras, bc.from_onnx) to "
                            "reveal its first linear layer" if isinstance(model, OpaqueModel) else
                            "the model has no linear layer to reveal" if layer is None else "its backend is not in this run"}
            continue
        K, N, where = layer
        found = reveal(backend, K, batch_size=p["batch_size"], N=N, check_rows=CHECK_ROWS)
        p["explain"] = {"layer": where, "K": K, "N": N, "tree": found.name or found.description, "fixed": found.fixed,
                        "fused": found.fused, "drawn": draw(found.tree) if found.tree is not None else None,
                        "digest": hashlib.sha256(str(found.tree).encode()).hexdigest()[:12] if found.fixed else None,
                        "float32": found.float32, "precision_cause": found.precision.get("cause"),
                        "queries": found.queries, "seconds": round(found.seconds, 3)}


def why(points: list[dict[str, Any]]) -> str:
    """Per backend, its batch sizes grouped by the tree of the first linear layer, one line per group."""
    lines = []
    for label in dict.fromkeys(p["backend"] for p in points):
        explained = [p for p in points if p["backend"] == label and "explain" in p]
        if not explained:
            continue
        if "why" in explained[0]["explain"]:
            lines.append(f"{label}: {explained[0]['explain']['why']}")
            continue
        e0 = explained[0]["explain"]
        groups: dict[Any, list[dict[str, Any]]] = {}
        for p in explained:
            groups.setdefault(p["explain"]["digest"] or ("not fixed", p["batch_size"]), []).append(p)
        head = f"{label}, {e0['layer']} (K = {e0['K']}):"
        if len(groups) == 1:
            lines.append(f"{head} one tree at every batch size: {e0['tree']}")
            continue
        parts = [f"B = {', '.join(str(p['batch_size']) for p in g)}: {g[0]['explain']['tree']}" for g in groups.values()]
        lines.append(f"{head} {len(groups)} trees; " + "; ".join(parts))
    for p in points:  # a silent precision change, wherever it was seen
        e = p.get("explain", {})
        if e.get("float32") is False:
            lines.append(f"{p['backend']} at B = {p['batch_size']} is not float32: {e['precision_cause']}")
    return "\n".join(lines)
