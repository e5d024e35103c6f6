"""The orders study (batchcore/studies/orders.py): every named order's error within its textbook bound on
conditioned dot products (a wrong order, or a silent drop of precision, would not be), and the conditioning
the study asks for is the one the data has."""

import math

import numpy as np
import pytest

import batchcore as bc
from batchcore.studies.orders import ORDERS, U, bound, conditioned


def test_every_order_keeps_within_its_bound():
    study = bc.studies.orders(Ks=(16, 1000), conds=(1.0, 1e4), rows=30, progress=False)
    cells = study.data["cells"]
    assert {c["order"] for c in cells} == set(ORDERS) and len(cells) == len(ORDERS) * 4
    assert all(c["within_bound"] and c["max_error_over_bound"] <= 1.0 for c in cells), \
        [(c["order"], c["K"], c["cond"], c["max_error_over_bound"]) for c in cells if not c["within_bound"]]
    assert study.verdict.startswith("Every order's error kept within its textbook bound")
    # the compensated and doubled-precision orders are within a few u even at condition 1e4; the chains are not
    at = {(c["order"], c["K"], c["cond"]): c["max_rel_error_u"] for c in cells}
    assert at[("dot2", 1000, 1e4)] <= 1.5 and at[("f64", 1000, 1e4)] <= 1.0 and at[("seq", 1000, 1e4)] > 10


def test_the_bound_catches_a_silent_drop_to_bfloat16():
    """The same chain with its inputs rounded to bfloat16 (what a "fast" mode does unasked) leaves seq's
    float32 bound on well-conditioned data: the check has the power to flag it."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(20):
        a, b = conditioned(256, 1.0, rng)
        exact = math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True))
        cond = math.fsum(abs(float(x) * float(y)) for x, y in zip(a, b, strict=True)) / abs(exact)
        err = abs(float(bc.orders.dot(a, b, 0.0, "seq", precision="bf16")) - exact) / abs(exact)
        worst = max(worst, err / bound("seq", 256, cond))
    assert worst > 1.0


@pytest.mark.parametrize("cond", [1e3, 1e6])
def test_the_data_has_the_condition_asked_for(cond):
    rng = np.random.default_rng(2)
    got = []
    for _ in range(20):
        a, b = conditioned(512, cond, rng)
        products = [float(x) * float(y) for x, y in zip(a, b, strict=True)]
        got.append(math.fsum(abs(p) for p in products) / abs(math.fsum(products)))
    assert 0.5 * cond <= float(np.median(got)) <= 2 * cond
    assert U == 2.0 ** -24
