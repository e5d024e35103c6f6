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
from .tree import draw, sketch

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
                        "fused": found.fused,
                        "rounded_terms": list(found.rounded_terms), "drawn": draw(found.tree) if found.tree is not None else None,
                        "sketch": sketch(found.tree) if found.tree is not None else None,
                        "digest": hashlib.sha256(str(found.tree).encode()).hexdigest()[:12] if found.fixed else None,
                        "float32": found.float32, "precision_cause": found.precision.get("cause"),
                        "queries": found.queries, "seconds": round(found.seconds, 3)}


def groups(points: list[dict[str, Any]]) -> dict[str, tuple[str, list[tuple[list[int], dict[str, Any]]]]]:
    """Per backend with explained points: the layer it names ("layer 0 (K = 256)") and its batch sizes grouped
    by tree, each group with the explanation of its first point (one group holding ``why`` when there is
    no tree to reveal)."""
    out = {}
    for label in dict.fromkeys(p["backend"] for p in points):
        explained = [p for p in points if p["backend"] == label and "explain" in p]
        if not explained:
            continue
        e0 = explained[0]["explain"]
        if "why" in e0:
            out[label] = ("", [([p["batch_size"] for p in explained], e0)])
            continue
        by_tree: dict[Any, list[dict[str, Any]]] = {}
        for p in explained:
            by_tree.setdefault(p["explain"]["digest"] or ("not fixed", p["batch_size"]), []).append(p)
        out[label] = (f"{e0['layer']} (K = {e0['K']})",
                      [([p["batch_size"] for p in g], g[0]["explain"]) for g in by_tree.values()])
    return out


def why(points: list[dict[str, Any]]) -> str:
    """Per backend, its batch sizes grouped by the tree of the first linear layer, one line per backend; then
    each point whose layer was not float32."""
    lines = []
    for label, (head, parts) in groups(points).items():
        if "why" in parts[0][1]:
            lines.append(f"{label}: {parts[0][1]['why']}")
        elif len(parts) == 1:
            lines.append(f"{label}, {head}: one tree at every batch size: {parts[0][1]['tree']}")
        else:
            said = [f"B = {', '.join(map(str, sizes))}: {e['tree']}" for sizes, e in parts]
            lines.append(f"{label}, {head}: {len(parts)} trees; " + "; ".join(said))
    for p in points:  # a silent precision change, wherever it was seen
        e = p.get("explain", {})
        if e.get("float32") is False:
            lines.append(f"{p['backend']} at B = {p['batch_size']} is not float32: {e['precision_cause']}")
    return "\n".join(lines)
