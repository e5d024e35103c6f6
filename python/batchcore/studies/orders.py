"""Study: each named accumulation order against the textbook. For dot products of K terms with a prescribed
condition number (cond = sum |a_k b_k| / |sum a_k b_k|), the largest relative error of each order's float32
result against the exact value, beside the order's a-priori bound (Higham, "Accuracy and Stability of
Numerical Algorithms", ch. 3-4; Ogita, Rump and Oishi 2005 for dot2), u = 2^-24, gamma_n = n u / (1 - n u):

- seq, seq-nofma: gamma_K cond (a chain of K roundings; with fma the products are exact, the bound stays);
- pairwise: gamma_(ceil(log2 K) + 1) cond (products rounded, then a balanced tree);
- lanes:W: gamma_(ceil(K / W) + log2 W) cond; chunk:C and splitk: gamma_(C + ceil(K / C)) cond;
- kahan (Neumaier, over the rounded products): 2u + (u + 2 K u^2) cond (Higham's (4.9) for the sum; the
  products' own rounding, which the compensation never sees, adds u cond);
- dot2: u + gamma_K^2 cond (twice the working precision, then rounded once);
- f64: u + gamma_K(2^-53) cond (products and sum in float64, one rounding to float32);
- the probabilistic estimate sqrt(K) u cond (Higham and Mary 2019) beside them: what rounding errors
  that do not conspire give, which the measured errors of the chains follow rather than the worst case.

The exact value of each dot product is math.fsum of the float64 products (each exact: 24 + 24 bits): the
correctly rounded float64 of the exact sum, 2^-29 of a float32 ULP.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import checks
from ..info import info
from ..measure.orders import dot
from ..present.progress import Steps
from .record import Study, Table

QUESTION = "How far from the exact result does each accumulation order land, against its textbook bound?"
U = 2.0 ** -24
ORDERS = ("seq", "seq-nofma", "pairwise", "lanes:16", "chunk:256", "splitk:4", "kahan", "dot2", "f64")


def gamma(n: float, u: float = U) -> float:
    return n * u / (1 - n * u)


def bound(order: str, K: int, cond: float) -> float:
    """The a-priori bound on the relative error of ``order``'s float32 dot product of K terms at ``cond``."""
    if order in ("seq", "seq-nofma"):
        return gamma(K) * cond
    if order == "pairwise":
        return gamma(math.ceil(math.log2(K)) + 1) * cond
    if order.startswith("lanes:"):
        W = int(order.split(":")[1])
        return gamma(math.ceil(K / W) + math.log2(W)) * cond
    if order.startswith(("chunk:", "splitk:")):
        n = int(order.split(":")[1])
        C = n if order.startswith("chunk:") else math.ceil(K / n)
        return gamma(C + math.ceil(K / C)) * cond
    if order == "kahan":
        return 2 * U + (U + 2 * K * U * U) * cond
    if order == "dot2":
        return U + gamma(K) ** 2 * cond
    if order == "f64":
        return U + gamma(K, 2.0 ** -53) * cond
    raise ValueError(f"no bound for order {order!r}")


def conditioned(K: int, cond: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """a, b (float32, K terms) whose dot product has a condition number near ``cond``: random terms, the
    last pair chosen so that the sum nearly cancels to sum |a_k b_k| / cond."""
    a = rng.standard_normal(K).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    if cond > 1 and K > 1:
        partial = math.fsum(float(x) * float(y) for x, y in zip(a[:-1], b[:-1], strict=True))
        size = math.fsum(abs(float(x) * float(y)) for x, y in zip(a[:-1], b[:-1], strict=True))
        a[-1] = np.float32(1.0)
        b[-1] = np.float32(-partial + math.copysign(size / cond, partial or 1.0))
    return a, b


def orders(Ks: Any = (16, 256, 4096), conds: Any = (1.0, 1e3, 1e6), rows: int = 100, names: Any = ORDERS, seed: int = 0,
           progress: bool | None = None) -> Study:
    """The study on ``rows`` random dot products per (K, condition): per order, the largest relative error
    against the exact value (in units of u = 2^-24), the largest ratio of a row's error to that row's bound
    (each row's own condition number), and whether every error kept within its bound. ``study.data["cells"]``
    holds every figure."""
    Ks = [checks.positive_int(K, "K") for K in Ks]
    rows = checks.positive_int(rows, "rows")
    seed = checks.seed(seed)
    names = list(names)
    rng = np.random.default_rng(seed)
    cells = []
    with Steps("orders study", len(Ks) * len(conds), progress) as steps:
        for K in Ks:
            for cond in conds:
                steps.now(f"K = {K}, condition {cond:g}")
                data = [conditioned(K, float(cond), rng) for _ in range(rows)]
                exact = [math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True)) for a, b in data]
                kept = [(a, b, e, math.fsum(abs(float(x) * float(y)) for x, y in zip(a, b, strict=True)) / abs(e))
                        for (a, b), e in zip(data, exact, strict=True) if e]  # each row with its condition
                row_conds = [c for *_, c in kept]
                for name in names:
                    errors = [abs(float(dot(a, b, 0.0, name)) - e) / abs(e) for a, b, e, _ in kept]
                    ratios = [err / bound(name, K, c) for err, (*_, c) in zip(errors, kept, strict=True)]
                    median_cond = float(np.median(row_conds))
                    cells.append({"order": name, "K": K, "cond": float(cond), "median_cond": median_cond,
                                  "max_rel_error_u": max(errors) / U, "bound_u": bound(name, K, median_cond) / U,
                                  "max_error_over_bound": max(ratios),
                                  "probabilistic_u": math.sqrt(K) * median_cond, "within_bound": max(ratios) <= 1.0})
                steps.done()
    return Study("orders", QUESTION, _verdict(cells), _tables(cells), _notes(rows),
                 {"cells": cells, "Ks": Ks, "conds": [float(c) for c in conds], "rows": rows, "seed": seed}, info())


def _verdict(cells: list[dict[str, Any]]) -> str:
    outside = [c for c in cells if not c["within_bound"]]
    head = ("Every order's error kept within its textbook bound" if not outside else
            f"{len(outside)} of {len(cells)} cells exceeded their bound (first: {outside[0]['order']} at K = "
            f"{outside[0]['K']})")
    big = [c for c in cells if c["K"] == max(c["K"] for c in cells) and c["cond"] == max(x["cond"] for x in cells)]
    best = min(big, key=lambda c: c["max_rel_error_u"])
    worst = max(big, key=lambda c: c["max_rel_error_u"])
    return (f"{head}; at K = {best['K']} and condition {best['cond']:g} the errors range from {best['max_rel_error_u']:.3g} u "
            f"({best['order']}) to {worst['max_rel_error_u']:.3g} u ({worst['order']}).")


def _tables(cells: list[dict[str, Any]]) -> list[Table]:
    rows = [[c["order"], c["K"], f"{c['cond']:g}", round(c["median_cond"], 1), round(c["max_rel_error_u"], 3),
             round(c["bound_u"], 3), round(c["probabilistic_u"], 3), round(c["max_error_over_bound"], 4),
             "yes" if c["within_bound"] else "NO"] for c in cells]
    return [Table("Largest relative error against the exact value, in u = 2^-24, beside the order's bound and the "
                  "probabilistic estimate (both at the median row's condition number)",
                  ["order", "K", "condition asked", "median condition", "max error u", "bound u", "sqrt(K) cond u",
                   "max error / own bound", "within"], rows)]


def _notes(rows: int) -> list[str]:
    return [f"{rows} random dot products per (K, condition); the last pair of terms sets the condition; the exact "
            "value is math.fsum of the exact float64 products.",
            "Bounds: Higham ch. 3-4 (gamma_n = n u / (1 - n u)), Ogita-Rump-Oishi for dot2; the sqrt(K) u cond "
            "column is Higham and Mary's probabilistic estimate, not a bound."]
