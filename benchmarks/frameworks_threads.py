"""TensorFlow and PyTorch in one process: does each keep its own thread pool's speed?

batchcore's sweeps run Keras and torch backends side by side in one process. Both bring a thread pool
(TensorFlow's Eigen/oneDNN pool, torch's OpenMP one); if one starved or oversubscribed the other, its
figures measured beside the other would not be its own. Each round starts three fresh interpreters, in
turn: torch alone, TensorFlow alone, and both imported and used (each one's kernel run once before
timing); each times a 512 x 512 float32 matmul (and its result's hash: the same bits alone and together,
checked before any figure is printed). Medians over the rounds, and the ratio together / alone.

    python benchmarks/frameworks_threads.py            # 5 rounds
    python benchmarks/frameworks_threads.py --quick    # 1 round, fewer calls (CI smoke; asserts nothing about speed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CHILD = r"""
import hashlib, json, os, sys, time
import numpy as np
which, calls = sys.argv[1], int(sys.argv[2])
a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
out = {}
if which in ("torch", "both"):
    import torch
    ta = torch.from_numpy(a)
if which in ("tf", "both"):
    import tensorflow as tf
    fa = tf.constant(a)
def timed(fn):
    fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter_ns(); fn(); times.append(time.perf_counter_ns() - t)
    return float(np.median(times)) / 1e6
def digest(y):
    return hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()[:16]
if which in ("torch", "both"):
    out["torch_ms"] = timed(lambda: torch.mm(ta, ta))
    out["torch_bits"] = digest(torch.mm(ta, ta).numpy())
    out["torch_threads"] = torch.get_num_threads()
if which in ("tf", "both"):
    out["tf_ms"] = timed(lambda: tf.linalg.matmul(fa, fa).numpy())
    out["tf_bits"] = digest(tf.linalg.matmul(fa, fa).numpy())
    out["tf_intra_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
print(json.dumps(out))
"""


def run(which: str, calls: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CHILD, which, str(calls)], capture_output=True, text=True, env=env,
                          check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds, calls = (1, 20) if args.quick else (5, 200)
    seen: dict[str, list[dict]] = {"torch": [], "tf": [], "both": []}
    for _ in range(rounds):  # interleaved: a slow spell of the machine hits all three alike
        for which in seen:
            seen[which].append(run(which, calls))
    both = seen["both"][0]
    assert both["torch_bits"] == seen["torch"][0]["torch_bits"], "torch's matmul gives other bits beside TensorFlow"
    assert both["tf_bits"] == seen["tf"][0]["tf_bits"], "TensorFlow's matmul gives other bits beside torch"
    print(f"{rounds} rounds of fresh interpreters, median of {calls} calls each; 512 x 512 float32 matmul; "
          f"torch threads {both['torch_threads']}, TensorFlow intra-op threads {both['tf_intra_threads']} (0: its default)")
    print("| kernel | alone, ms | beside the other, ms | together / alone |")
    print("|---|---|---|---|")
    for key, alone in (("torch_ms", "torch"), ("tf_ms", "tf")):
        a = float(np.median([r[key] for r in seen[alone]]))
        b = float(np.median([r[key] for r in seen["both"]]))
        print(f"| {'torch.mm' if alone == 'torch' else 'tf.linalg.matmul'} | {a:.4g} | {b:.4g} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
