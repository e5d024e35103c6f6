"""Silent precision changes: whether a backend's linear layer computed in float32 at all.

A library may compute a float32 product in less precision without saying so: oneDNN's ``fpmath`` mode
(torch's ``set_float32_matmul_precision("medium")`` / ``torch.backends.mkldnn.matmul.fp32_precision =
"bf16"`` on CPUs with AMX), TF32 on NVIDIA GPUs, a Keras mixed-precision policy set elsewhere in a
program, a fast-math build. Any float32 summation tree obeys the classical first-order bound (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 3.4-3.5):

    |computed - exact| <= sum_k gamma(r_k) |w_k x_k|,   gamma(n) = n u / (1 - n u),  u = 2^-24,

where r_k counts the roundings on term k's path to the root: its product, and one per addition it passes
(a node of c children: c - 1, the most a fused multi-term add can round). For seq that is gamma_K on the
first term; for pairwise gamma(ceil(log2 K) + 1); a revealed tree gives each term its own r_k.

The check feeds the layer rows whose terms are exact in float32 but not in fewer bits: x_k = 1 + 2^-10
(11 significant bits: exact in TF32 and float16, not in bfloat16's 8) and x_k = 1 + 2^-12 (13 bits: exact
in none of them), weights 1, on the n = min(K, 64) terms with the fewest roundings (zeros elsewhere: adding
a zero is exact, so no path rounds more than n times, whatever the tree). The exact sum is n (1 + 2^-e)
(every partial sum is exact in float32, so a float32 tree gives it exactly); a layer that rounds its
inputs to 8 or 11 bits gives n, an error of n 2^-e: at least 2^(24 - e) / n = 64 times the bound. Which
probe fails says how many bits the inputs kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .tree import Tree

UNIT_ROUNDOFF_FP32 = 2.0 ** -24
PROBE_TERMS = 64  # nonzero terms of a probe row
# (exponent e of the probe value 1 + 2^-e, significant bits it needs)
PROBES = ((10, 11), (12, 13))


def gamma(n: np.ndarray | int, u: float = UNIT_ROUNDOFF_FP32) -> np.ndarray:
    """Higham's gamma_n = n u / (1 - n u), elementwise."""
    n = np.asarray(n, np.float64)
    return n * u / (1 - n * u)


def roundings_per_term(tree: Tree | None, K: int) -> np.ndarray:
    """r_k for each of the K terms (see the module's docstring); without a tree, K for every term (the
    bound of any order: a chain's first term)."""
    if tree is None:
        return np.full(K, K, np.int64)
    r = np.ones(K, np.int64)  # the product's rounding
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:  # iterative: a chain over K terms is K levels deep
        node, above = stack.pop()
        if isinstance(node, int):
            r[node] += above
            continue
        for child in node:
            stack.append((child, above + len(node) - 1))
    return r


def check(element: Callable[[np.ndarray], np.float32], tree: Tree | None, K: int, M: int, row: int) -> dict[str, Any]:
    """Runs the two probes through ``element`` (a batch x of M x K float32 rows -> the library's output
    element of row ``row``, weights all 1) and says whether the layer stayed within float32's bound:
    ``float32`` (bool), ``error_over_bound`` (the larger ratio of the two probes), ``bits`` (the significant
    bits its inputs kept when it did not: 8 for bfloat16, 11 for TF32 or float16, None otherwise) and
    ``cause`` (in words, None when within the bound)."""
    n = min(K, PROBE_TERMS)
    # Adding a zero is exact: a path rounds at most once per nonzero term, whatever the tree
    r = np.minimum(roundings_per_term(tree, K), n)
    terms = np.argsort(r, kind="stable")[:n]  # the terms the library rounds least
    lost: list[int] = []  # bits of the probes whose inputs the library rounded away (its output: exactly n)
    beyond = False
    worst = 0.0
    for e, needed in PROBES:
        value = np.float32(1 + 2.0 ** -e)
        x = np.ones((M, K), np.float32)
        x[row] = 0
        x[row, terms] = value
        exact = n * (1 + 2.0 ** -e)  # exact in float64: n < 2^9 terms of 13 bits
        bound = float(np.sum(gamma(r[terms]) * float(value)))
        got = float(element(x))
        worst = max(worst, abs(got - exact) / bound)
        if abs(got - exact) > bound:
            beyond = True
            if got == n:
                lost.append(needed)
    if not beyond:
        return {"float32": True, "error_over_bound": worst, "bits": None, "cause": None}
    bits: int | None
    if 11 in lost:  # 1 + 2^-10 became 1: 8 significant bits or fewer
        bits, cause = 8, "inputs rounded to 8 significant bits (bfloat16: oneDNN's bf16 fpmath mode, a bf16 policy)"
    elif lost == [13]:  # 1 + 2^-10 kept, 1 + 2^-12 lost
        bits, cause = 11, "inputs rounded to 11 significant bits (TF32 or float16)"
    else:
        bits, cause = None, "errors beyond float32's bound (a reduced-precision sum or a fast-math mode)"
    return {"float32": False, "error_over_bound": worst, "bits": bits,
            "cause": f"{cause}: error {worst:.3g} x float32's bound for this tree"}
