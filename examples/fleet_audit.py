"""Does the model give the same bits on every machine of a fleet? A fleet audit on a Ray cluster.

With --address, the cluster at that address (``auto``: the one this machine joined with ``ray start``).
Without it, a stand-in fleet on this machine: three raylets, two as they are and one started with the
variables that make PyTorch and MKL choose other kernels (AVX2 where the CPU has AVX-512), as a node of an
older CPU generation would. The audit runs the quick-start MLP through torch, NumPy and the native core at
B = 1, 8 and 64 on every node and groups the nodes whose outputs agree bit for bit.

    python examples/fleet_audit.py [--address auto] [--out audit.json] [--quick]
    batchcore report audit.json -o report.html
"""

from __future__ import annotations

import argparse

import batchcore as bc


def stand_in_fleet() -> tuple[object, str]:
    from ray.cluster_utils import Cluster

    with open("/proc/cpuinfo") as f:
        avx512 = " avx512f" in f.read()
    older = ({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"} if avx512 else
             {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"})
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1, env_vars=older)
    cluster.wait_for_nodes()
    return cluster, cluster.address


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", help="a Ray cluster (default: a stand-in fleet of three raylets here)")
    ap.add_argument("--out", default="audit.json")
    ap.add_argument("--quick", action="store_true", help="64 rows instead of 1,000")
    args = ap.parse_args()
    cluster, address = (None, args.address) if args.address else stand_in_fleet()
    try:
        model = bc.mlp([784, 128, 10], activation="relu", head="softmax", seed=0)
        audit = bc.audit(model, batch_sizes=[1, 8, 64], rows=64 if args.quick else 1000,
                         backends=[bc.torch(measure_memory=False), bc.numpy(), bc.native()],
                         executor=bc.ray_executor(address=address), ship_outputs=True)
        print(audit)
        audit.to_json(args.out)
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()
