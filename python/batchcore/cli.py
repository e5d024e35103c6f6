"""``batchcore`` on the command line: the quick-start sweep, printed as a table and its classes."""

from __future__ import annotations

import argparse
import json
import sys


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    import batchcore as bc

    ap = argparse.ArgumentParser(prog="batchcore", description="What does the batch size change? Measure it.")
    ap.add_argument("--sizes", default=[784, 128, 10], type=_int_list, help="MLP layer sizes (default 784,128,10)")
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--batch-sizes", default=[1, 2, 3, 8, 64, 256, 1024], type=_int_list)
    ap.add_argument("--orders", default="seq,splitk:4", help="native orders to include")
    ap.add_argument("--rows", type=int, default=None, help="rows of data (default: max(512, the largest batch size))")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (the GPU when there is one)")
    ap.add_argument("--target", type=float, default=0.01, help="relative CI half-width of each median (default 0.01)")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds at most per point (default 15)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of samples at least per point (default 0.5)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds per point (default 6)")
    ap.add_argument("--cold", action="store_true", help="no pass finds its input in a cache (see README)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of native and torch (default: all cores)")
    ap.add_argument("--no-torch-memory", action="store_true",
                    help="skip torch's CPU memory (peak RSS growth of a fresh process, ~1 s per point)")
    ap.add_argument("--out", default=None, help="JSON-lines file: points appended as measured, reruns resume")
    ap.add_argument("--info", action="store_true", help="print the environment and exit")
    args = ap.parse_args(argv)

    if args.info:
        print(json.dumps(bc.info(), indent=1))
        return 0
    try:
        model = bc.mlp(args.sizes, activation=args.activation, head="softmax", seed=0)
        device = str(bc.devices.parse(args.device))
        backends: list[bc.backends.Backend] = []
        try:
            backends.append(bc.torch(device=device, threads=args.threads if device == "cpu" else None,
                                     measure_memory=not args.no_torch_memory))
        except bc.MissingDependencyError as e:
            print(f"note: {e}; the torch backend is left out", file=sys.stderr)
        if device == "cpu":
            backends.append(bc.numpy())
        threads = dict(threads=args.threads) if device == "cpu" else {}
        backends += [bc.native(order=o, device=device, **threads) for o in args.orders.split(",") if o]
        timer = bc.Timer(target=args.target, timeout_s=args.timeout, min_time_s=args.min_time)
        res = bc.sweep(model, batch_sizes=args.batch_sizes, backends=backends,
                       rows=args.rows, timer=timer, out=args.out, cold=args.cold, rounds=args.rounds)
    except bc.BatchcoreError as e:
        print(f"batchcore: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    env = res.env
    print(f"{model!r} on {env['cpu']} ({env['cpu_count']} cores, {env['simd']}), torch {env['torch']}, "
          f"numpy {env['numpy']}, {len(res.points)} points{', cold' if args.cold else ''}")
    ceilings = {(c["device"], c["threads"]): c for c in env["probes"].values() if "unavailable" not in c}
    for (device, threads), c in ceilings.items():
        where = f"{device}, {threads} threads" if threads else device
        print(f"  ceilings ({where}): fma peak {c['peak_gflops']:.0f} GFLOP/s, memory {c['bandwidth_gbs']:.0f} GB/s"
              + (f", last-level cache {c['cache_bandwidth_gbs']:.0f} GB/s" if c["cache_bandwidth_gbs"] else ""))
    print()
    print(res.table())
    print("\nInvariance classes (batch sizes whose outputs have identical bits):")
    print(res.classes())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
