"""``python tests/adversarial_child.py``: run cases of :mod:`adversarial_cases`, one name a line on standard
input, in this process, answering each with one line ``@@ {json}``: ``{"outcome": "ok"}`` or
``{"outcome": "raised", "type", "batchcore", "message"}``. Each case has a fresh scope, a fresh temporary
folder and cache. A crash (signal) or a hang is seen by the parent as such (it then starts a new child);
nothing here hides them. ``python tests/adversarial_child.py NAME`` runs one case and exits."""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MARK = "@@ "  # what a case prints itself is not an answer


def run(name: str) -> dict:
    import numpy as np

    import batchcore as bc
    from adversarial_cases import CASES

    code = CASES[name][1]
    with tempfile.TemporaryDirectory(prefix="batchcore-adversarial-") as tmp:
        os.environ["BATCHCORE_CACHE_DIR"] = os.path.join(tmp, "cache")
        scope = {
            "bc": bc, "np": np, "os": os, "json": json, "tmp": tmp,
            "M": bc.mlp([16, 8, 4], seed=0),
            "X": np.random.default_rng(0).standard_normal((4, 16), dtype=np.float32),
            "Q": bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5),
        }
        try:
            exec(compile(code, f"<case {name}>", "exec"), scope)
        except BaseException as e:  # reported, judged by the parent
            return {"outcome": "raised", "type": type(e).__name__, "batchcore": isinstance(e, bc.BatchcoreError),
                    "message": str(e)}
    return {"outcome": "ok"}


def main(argv: list) -> int:
    names = argv[1:] or (line.strip() for line in sys.stdin)
    for name in names:
        print(MARK + json.dumps(run(name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
