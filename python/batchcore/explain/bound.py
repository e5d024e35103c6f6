"""How far rounding alone can move a model's outputs: a first-order forward error bound per output, for the
models batchcore reads (chains and graphs, whatever framework they came from).

The bound is carried through the model in float64 as two non-negative arrays per value: ``A``, a bound on
its magnitude (the model run on ``|x|`` with ``|W|``, ``|b|``), and ``E``, a bound on its rounding error.
With ``u`` the unit roundoff of the format and ``g(n) = n u / (1 - n u)`` (Higham's gamma):

- linear, convolution, matmul, K terms per output: ``A' = |W| A + |b|``, ``E' = |W| E + g(K + 1) A'`` (any
  order of the K products and the bias, fused or not, lies within ``g(K + 1)`` of the exact sum of
  magnitudes; two computed factors: ``E' = E1 A2 + A1 E2 + g(K) A'``);
- per-channel affine (batch norm in eval mode) ``x s + t``: ``A' = |s| A + |t|``, ``E' = |s| E + g(2) A'``;
- max pooling, reshapes, transposes, slices, concatenation: applied to A and to E; average pooling over k
  values: ``E' = avg(E) + g(k + 1) A'``; a sum or mean over n values: ``E' = sum(E) + g(n) A'`` (``g(n + 1)``);
- an activation f of largest slope L: ``E' = L E + c u A'`` with A' bounding |f| (|f(z)| <= |z| for ReLU,
  GELU, SiLU, Mish, ...; 1 for sigmoid) and c the roundings of the function's own evaluation (table
  :data:`ACTIVATIONS`);
- softmax over n values: ``A' = 1``, ``E' = max(E) / 2 + g(n + 4)`` (its Jacobian's rows sum to at most
  2 y (1 - y) <= 1/2); log-softmax: ``A' = 2 max(A) + log n``, ``E' = 2 max(E) + g(n + 4) A'``;
- add and subtract: ``E' = E1 + E2 + u A'``; multiply: ``E' = A1 E2 + A2 E1 + u A'``; divide by a constant
  c: ``E' = E / |c| + u A'``; an embedding's rows are exact.

Second-order terms are left out, as in the textbook bounds. Two evaluations of one output (batch size B
and batch size 1, in whatever orders) then differ by at most ``2 E``, and an evaluation lies within
``2 E`` of the correctly rounded one too. Layer norm, attention and division by a computed value have no
bound here (a lower bound on a variance or a denominator is not known from magnitudes):
:func:`forward_error_bound` names the first such operation instead of guessing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..model.chain import Model
from ..model.graph import AnyModel, GraphModel, GraphNode

UNIT_ROUNDOFF = {"fp32": 2.0 ** -24, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11}

# name -> (largest slope L as a function of alpha, roundings c of its own evaluation, |f| from the bound A on |z|)
ACTIVATIONS: dict[str, tuple[Any, int, Any]] = {
    "relu": (lambda a: 1.0, 0, lambda A: A),
    "relu6": (lambda a: 1.0, 0, lambda A: np.minimum(A, 6.0)),
    "leaky_relu": (lambda a: max(1.0, abs(a)), 1, lambda A: A),  # |f| <= L |z| for these two (scaled below)
    "elu": (lambda a: max(1.0, abs(a)), 4, lambda A: A),
    "gelu": (lambda a: 1.13, 4, lambda A: A),
    "gelu_tanh": (lambda a: 1.13, 8, lambda A: A),
    "silu": (lambda a: 1.10, 4, lambda A: A),
    "mish": (lambda a: 1.09, 8, lambda A: A),
    "tanh": (lambda a: 1.0, 4, lambda A: np.minimum(A, 1.0)),
    "sigmoid": (lambda a: 0.25, 4, lambda A: np.ones_like(A)),
    "hardsigmoid": (lambda a: 1 / 6, 3, lambda A: np.minimum(1.0, (A + 3) / 6)),
    "hardswish": (lambda a: 1.5, 4, lambda A: A * np.minimum(1.0, (A + 3) / 6)),
}


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of n roundings."""
    return float("inf") if n * u >= 1 else n * u / (1 - n * u)


def _chain_nodes(model: Model) -> list[GraphNode]:
    """A chain's layers as graph operations over rows (node 0 the input)."""
    nodes = [GraphNode("input", shape=(model.input_width,))]
    for layer in model.layers:
        p = layer.params
        if layer.kind == "linear":
            nodes.append(GraphNode("linear", (len(nodes) - 1,), {"weight": p["weight"], "bias": p.get("bias")}))
        elif layer.kind == "batch_norm":
            nodes.append(GraphNode("channel_affine", (len(nodes) - 1,), {"scale": p["scale"], "shift": p["shift"]}))
        elif layer.kind in ("softmax", "layer_norm"):
            nodes.append(GraphNode(layer.kind, (len(nodes) - 1,), {"dim": 0, **p}))
        else:
            nodes.append(GraphNode("activation", (len(nodes) - 1,), {"name": layer.kind, "alpha": None}))
    return nodes


def _magnitudes(n: GraphNode) -> GraphNode:
    """The node with every array parameter as its magnitude in float64."""
    return replace(n, params={k: np.abs(v.astype(np.float64)) if isinstance(v, np.ndarray) else v
                              for k, v in n.params.items()})


def _taps(n: GraphNode) -> int:
    return int(np.prod(n.params["weight"].shape[1:]))


def _step(n: GraphNode, A: list[Any], E: list[Any], nodes: list[GraphNode], u: float) -> tuple[Any, Any] | str:
    """(A', E') after one operation, or why it has no bound here."""
    from ..backends.array_graph import OPS

    op, m = n.op, _magnitudes(n)
    run = OPS[op]
    if op in ("reshape", "permute", "slice", "concat", "max_pool2d"):
        return run(n, A), run(n, E)
    if op == "constant":
        return m.params["value"], np.zeros_like(m.params["value"])
    if op == "embedding":
        return run(m, A), np.zeros(A[0].shape + m.params["table"].shape[1:])
    if op in ("linear", "conv2d"):
        A2 = run(m, A)
        return A2, run(replace(m, params={**m.params, "bias": None}), E) + gamma(_taps(n) + 1, u) * A2
    if op == "matmul":
        A2 = A[0] @ A[1]
        return A2, E[0] @ A[1] + A[0] @ E[1] + gamma(A[0].shape[-1], u) * A2
    if op == "channel_affine":
        A2 = run(m, A)
        return A2, run(replace(m, params={**m.params, "shift": np.zeros_like(m.params["shift"])}), E) + gamma(2, u) * A2
    if op in ("avg_pool2d", "adaptive_avg_pool2d"):
        A2 = run(n, A)
        k = int(np.prod(n.params["kernel"])) if op == "avg_pool2d" else int(
            np.prod([-(-size // out) + 1 for size, out in zip(A[0].shape[2:], n.shape[1:], strict=True)]))
        return A2, run(n, E) + gamma(k + 1, u) * A2
    if op == "reduce":
        axis, count = n.params["dim"] + 1, A[0].shape[n.params["dim"] + 1]
        A2 = run(n, A)
        return A2, run(n, E) + gamma(count + (1 if n.params["mean"] else 0), u) * A2
    if op == "activation":
        name, alpha = n.params["name"], n.params.get("alpha")
        if name not in ACTIVATIONS:
            return f"the {name} activation (no rounding bound is derived for it here)"
        slope, own, size = ACTIVATIONS[name]
        L = slope(1.0 if alpha is None else float(alpha))
        A2 = size(A[0]) * (L if name in ("leaky_relu", "elu") else 1.0)
        return A2, L * E[0] + own * u * A2
    if op in ("softmax", "log_softmax"):
        axis = n.params["dim"] + 1
        count = A[0].shape[axis]
        worst_E = E[0].max(axis=axis, keepdims=True)
        if op == "softmax":
            return np.ones_like(A[0]), np.broadcast_to(worst_E / 2 + gamma(count + 4, u), A[0].shape)
        A2 = np.broadcast_to(2 * A[0].max(axis=axis, keepdims=True) + np.log(count), A[0].shape)
        return A2, 2 * worst_E + gamma(count + 4, u) * A2
    if op == "binary":
        kind = n.params["op"]
        if kind in ("add", "sub"):
            A2 = A[0] + A[1]
            return A2, E[0] + E[1] + u * A2
        if kind == "mul":
            A2 = A[0] * A[1]
            return A2, A[0] * E[1] + A[1] * E[0] + u * A2
        if kind == "div" and nodes[n.inputs[1]].op == "constant":
            A2 = A[0] / A[1]
            return A2, E[0] / A[1] + u * A2
        return "a division by a computed value (no lower bound on the denominator)"
    return f"{op.replace('_', ' ')} (no rounding bound is derived for it here)"


def forward_error_bound(model: AnyModel, x: np.ndarray, fmt: str = "fp32") -> tuple[np.ndarray | None, str]:
    """(E, how): E (float64, one row per row of ``x``, the output flattened) bounds, to first order, the
    rounding error of every output of ``model`` on the rows of ``x`` in the format ``fmt`` (fp32, bf16,
    fp16); None, and the operation that has no bound, when there is one (see the module's docstring)."""
    u = UNIT_ROUNDOFF[fmt]
    if isinstance(model, GraphModel):
        nodes, output = list(model.nodes), model.output
    else:
        nodes = _chain_nodes(model)
        output = len(nodes) - 1
    A: list[Any] = [np.abs(np.asarray(x, np.float64))]
    E: list[Any] = [np.zeros_like(A[0])]  # the inputs are exact: their rounding to the format came before
    with np.errstate(over="ignore", invalid="ignore"):
        for i, n in enumerate(nodes[1:], start=1):
            step = _step(n, [A[j] for j in n.inputs], [E[j] for j in n.inputs], nodes, u)
            if isinstance(step, str):
                return None, f"node {i}{f' ({n.name})' if n.name else ''}: {step}"
            a, e = step
            if n.op != "constant" and isinstance(model, GraphModel):
                a, e = a.reshape(len(x), *n.shape), e.reshape(len(x), *n.shape)
            A.append(a)
            E.append(e)
    operations = sum(n.op != "constant" for n in nodes[1:])
    return (np.asarray(E[output], np.float64).reshape(len(x), -1),
            f"first-order bound through {operations} operations, u = 2^{int(np.log2(u))}")
