"""Changed predictions explained: for each row whose argmax at batch size B differs from B=1's, its margin at
B=1 (top-1 minus top-2 logit), how far its logits moved, and how far rounding alone could have moved them
(:mod:`.bound`). A flip is **within rounding** when the change of the two classes' difference is inside
that bound (the row sat on a decision boundary at float resolution), **suspect** when it is not (something
other than rounding changed the output: a statistic over the batch, another precision, padding), **no
bound** when the model has none. The sweep's points and the accuracy study both say it this way."""

from __future__ import annotations

from typing import Any

import numpy as np

SHOWN = 50  # flips a sweep's point lists (its counts cover all of them)


def flip_records(y: np.ndarray, y_b1: np.ndarray, labels: np.ndarray | None, bound: np.ndarray | None) -> list[dict[str, Any]]:
    """One record per row whose argmax at this B (``y``, rows x classes) differs from B=1's (``y_b1``): its
    label (None without labels), the B=1 margin (top-1 minus top-2), the largest |change| of a logit, the
    change of the two classes' difference, the rounding bound of that difference (2 (E_i + E_j) for the
    per-output bound E of one evaluation, None without a bound) and the verdict."""
    out = []
    for r in np.nonzero(y.argmax(1) != y_b1.argmax(1))[0]:
        i, j = int(y_b1[r].argmax()), int(y[r].argmax())
        top2 = np.sort(y_b1[r].astype(np.float64))[-2:]
        change = abs(float(np.float64(y[r, i]) - y[r, j] - (np.float64(y_b1[r, i]) - y_b1[r, j])))
        limit = None if bound is None else 2 * float(bound[r, i] + bound[r, j])
        out.append({"row": int(r), "label": None if labels is None else int(labels[r]), "pred_b1": i, "pred": j,
                    "margin_b1": float(top2[1] - top2[0]),
                    "max_abs_delta": float(np.max(np.abs(y[r].astype(np.float64) - y_b1[r]))),
                    "pair_change": change, "rounding_bound": limit,
                    "verdict": "no bound" if limit is None else "within rounding" if change <= limit else "suspect"})
    return out


def point_fields(found: list[dict[str, Any]], how: str) -> dict[str, Any]:
    """What a sweep's point says of its flips: the counts per verdict, how the bound was found (or why there
    is none) and the first :data:`SHOWN` records."""
    return {"flips_within_rounding": sum(f["verdict"] == "within rounding" for f in found),
            "flips_suspect": sum(f["verdict"] == "suspect" for f in found),
            "rounding_bound": how, "flips": found[:SHOWN]}
