"""How long bc.reveal takes to find, and check, the summation tree of one linear-layer output at K = 4096
(issue 30's bar: under 5 s per library and batch size on 2 cores; FPRev's published GEMV at n = 4096 took
12.8 s). Per backend and batch size: whether the tree reproduced the library's bits on the checked rows, its
name or description, whether the layer kept within float32's error bound for that tree (the silent-precision
check), the library calls it took, and the seconds (queries, check and precision probes together).

    python benchmarks/reveal.py            # K = 4096, M = 1, 2, 3, 64; 1,000 checked rows
    python benchmarks/reveal.py --quick    # K = 256, two batch sizes (CI smoke)
"""

from __future__ import annotations

import argparse

import batchcore as bc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    K, sizes, rows = (256, [1, 8], 200) if args.quick else (4096, [1, 2, 3, 64], 1000)
    backends = [bc.native(), bc.numpy()]
    try:
        backends.append(bc.torch(measure_memory=False))
    except bc.MissingDependencyError:
        pass
    print("| backend | B | fixed tree (rows reproduced) | name or description | float32 (error / bound) | library calls | s |")
    print("|---|---|---|---|---|---|---|")
    for backend in backends:
        for M in sizes:
            found = bc.reveal(backend, K, batch_size=M, check_rows=rows)
            print(f"| {found.backend} | {M} | {found.fixed} ({found.reproduced}/{found.checked}) | "
                  f"{found.name or found.description} | {found.float32} ({found.precision['error_over_bound']:.2g}) | "
                  f"{found.queries} | {found.seconds:.2f} |")


if __name__ == "__main__":
    main()
