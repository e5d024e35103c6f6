"""A 1,000-cell bits-only grid through Ray on a local cluster of two raylets (2 + 2 CPUs: four worker
processes), beside the same grid run in this process (issue 32's bar: under 20 ms of overhead per cell, the
driver's memory flat over the grid).

The grid: 10 native orders x 100 batch sizes (1 to 100) of a small MLP over 100 rows, every cell the
outputs of all rows in batches of B. Measured, after one warm-up grid that starts the workers: the wall
time per cell through Ray and here, the driver's own CPU time per cell (what a larger grid costs the
machine that drives it), and the driver's resident memory (VmRSS) sampled as the log grows.

    python benchmarks/ray_grid.py            # 1,000 cells
    python benchmarks/ray_grid.py --quick    # 40 cells (CI smoke)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import batchcore as bc

ORDERS = ["seq", "splitk:2", "splitk:4", "lanes:8", "lanes:16", "pairwise", "chunk:8", "chunk:16", "kahan", "dot2"]


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def points_in(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b'"type": "point"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from ray.cluster_utils import Cluster

    orders, sizes = (ORDERS[:2], list(range(1, 21))) if args.quick else (ORDERS, list(range(1, 101)))
    model = bc.mlp([32, 32, 8], activation="gelu", seed=0)
    backends = [bc.native(order=o, threads=1) for o in orders]
    cells = len(backends) * len(sizes)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    try:
        executor = bc.ray_executor(address=cluster.address)
        bc.sweep(model, sizes, backends, rows=100, timing=False, progress=False, executor=executor)  # starts the workers
        started = time.perf_counter()
        here = bc.sweep(model, sizes, backends, rows=100, timing=False, progress=False)
        local_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            log = os.path.join(folder, "grid.jsonl")
            samples: list[tuple[int, int]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.05):
                    samples.append((points_in(log), rss_bytes()))

            sampler = threading.Thread(target=sample)
            sampler.start()
            cpu, started = time.process_time(), time.perf_counter()
            there = bc.sweep(model, sizes, backends, rows=100, timing=False, progress=False, executor=executor, out=log)
            ray_s, driver_cpu_s = time.perf_counter() - started, time.process_time() - cpu
            stop.set()
            sampler.join()
        assert [p["fingerprint"] for p in there.points] == [p["fingerprint"] for p in here.points], "other bits through Ray"
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    print(f"cells: {cells} ({len(backends)} orders x {len(sizes)} batch sizes), same bits through Ray and here")
    print("| run | wall s | ms per cell | driver CPU ms per cell |")
    print("|---|---|---|---|")
    print(f"| here (one process) | {local_s:.2f} | {1e3 * local_s / cells:.2f} | - |")
    print(f"| Ray, 2 raylets x 2 CPUs | {ray_s:.2f} | {1e3 * ray_s / cells:.2f} | {1e3 * driver_cpu_s / cells:.2f} |")
    print(f"overhead per cell through Ray: {1e3 * (ray_s - local_s) / cells:.2f} ms of wall time")
    marks = [s for s in samples if s[0] > 0]
    if marks:
        print("| points logged | driver RSS MiB |")
        print("|---|---|")
        for share in (0.1, 0.25, 0.5, 0.75, 1.0):
            logged, rss = min(marks, key=lambda s: abs(s[0] - share * cells))
            print(f"| {logged} | {rss / 2**20:.1f} |")


if __name__ == "__main__":
    main()
