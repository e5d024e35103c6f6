"""``batchcore`` on the command line.

    batchcore [sweep] [options]          the quick-start sweep: table, ceilings, classes (--json: the points)
    batchcore report RUN... -o PAGE      one self-contained HTML page from sweeps and studies
    batchcore compare OLD NEW            SAME / FASTER / SLOWER / UNSURE per point
    batchcore probe                      the device's measured ceilings
    batchcore largest-batch              the largest batch whose forward pass fits a budget
    batchcore study NAME                 one of the five questions, answered on scikit-learn's digits

Bad arguments end in a one-line message and exit code 2, never a traceback. ``--json`` prints data
(and nothing else) on standard output wherever the output is data.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

COMMANDS = ("sweep", "report", "compare", "probe", "tune", "largest-batch", "study")


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _print_json(doc: Any) -> None:
    from .files import json_safe

    print(json.dumps(json_safe(doc), indent=1, allow_nan=False))


def _sweep_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--sizes", default=[784, 128, 10], type=_int_list, help="MLP layer sizes (default 784,128,10)")
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--batch-sizes", default=[1, 2, 3, 8, 64, 256, 1024], type=_int_list)
    ap.add_argument("--orders", default="seq,splitk:4", help="native orders to include")
    ap.add_argument("--rows", type=int, default=None, help="rows of data (default: max(512, the largest batch size))")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (the GPU when there is one)")
    # The timer's flags default to bc.Timer()'s settings, or those $BATCHCORE_TIMER names (docs/measurement.md)
    ap.add_argument("--target", type=float, default=None, help="relative CI half-width of each median (default 0.01)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds at most per point (default 15)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds of samples at least per point (default 0.5)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds per point (default 6)")
    ap.add_argument("--cold", action="store_true", help="no pass finds its input in a cache (docs/measurement.md)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of native and torch (default: all cores)")
    ap.add_argument("--no-torch-memory", action="store_true",
                    help="skip torch's CPU memory (peak RSS growth of a process of its own, ~0.3 s per point)")
    ap.add_argument("--out", default=None, help="JSON-lines file: points appended as measured, reruns resume")
    ap.add_argument("--plot", default=None, help="also draw every panel to this .png, .svg or .pdf")
    ap.add_argument("--explain", action="store_true",
                    help="reveal the summation tree each backend used per batch size (docs/reveal.md)")
    ap.add_argument("--info", action="store_true", help="print the environment and exit")
    ap.add_argument("--json", action="store_true", help="print the result (env, config, points) as JSON")


def run_sweep(args: argparse.Namespace) -> int:
    import batchcore as bc

    from .measure.timing import default_timer

    if args.info:
        _print_json(bc.info())
        return 0
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
    flags = {"target": args.target, "timeout_s": args.timeout, "min_time_s": args.min_time}
    timer = dataclasses.replace(default_timer(), **{k: v for k, v in flags.items() if v is not None})
    res = bc.sweep(model, batch_sizes=args.batch_sizes, backends=backends,
                   rows=args.rows, timer=timer, out=args.out, cold=args.cold, rounds=args.rounds,
                   explain=args.explain)
    if args.plot:
        res.plot(args.plot)
    if args.json:
        _print_json({"env": res.env, "config": res.config, "points": res.points})
        return 0
    env = res.env
    print(f"{model!r} on {env['cpu']} ({env['cpu_count']} cores, {env['simd']}), torch {env['torch']}, "
          f"numpy {env['numpy']}, {len(res.points)} points{', cold' if args.cold else ''}")
    ceilings = {(c["device"], c["threads"]): c for c in env["probes"].values() if "unavailable" not in c}
    for (where_device, where_threads), c in ceilings.items():
        where = f"{where_device}, {where_threads} threads" if where_threads else where_device
        print(f"  ceilings ({where}): fma peak {c['peak_gflops']:.0f} GFLOP/s, memory {c['bandwidth_gbs']:.0f} GB/s"
              + (f", last-level cache {c['cache_bandwidth_gbs']:.0f} GB/s" if c["cache_bandwidth_gbs"] else ""))
    print()
    print(res.table())
    print("\nInvariance classes (batch sizes whose outputs have identical bits):")
    print(res.classes())
    if args.explain:
        print("\nWhy the bits differ (the summation tree of the first linear layer, per batch size):")
        print(res.why())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from . import report as html_report

    html_report.write(args.runs, args.output, latency_ms=args.latency_ms, budget_bytes=args.budget_bytes)
    print(f"wrote {args.output} ({len(args.runs)} result file{'s' if len(args.runs) > 1 else ''})")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import batchcore as bc

    result = bc.compare(args.old, args.new, min_change=args.min_change)
    if args.json:
        _print_json({"rows": result.rows, "counts": result.counts()})
    else:
        print(result)
    return 0


def run_probe(args: argparse.Namespace) -> int:
    import batchcore as bc

    return _print_record(bc.probe(args.device, threads=args.threads, refresh=args.refresh).to_dict(), args.json, 24)


def run_tune(args: argparse.Namespace) -> int:
    import batchcore as bc

    return _print_record(bc.tune(refresh=args.refresh, threads=args.threads).to_dict(), args.json, 16)


def _print_record(record: dict, as_json: bool, key_width: int) -> int:
    """A probe's or a tuning's fields: JSON, or one 'key: value' line each."""
    if as_json:
        _print_json(record)
        return 0
    for k, v in record.items():
        print(f"{k:>{key_width}}: {v}")
    return 0


def run_largest_batch(args: argparse.Namespace) -> int:
    import batchcore as bc

    model = bc.mlp(args.sizes, activation=args.activation, head="softmax", seed=0)
    backend = bc.native(order=args.order, device=args.device)
    budget = None if args.budget_mib is None else int(args.budget_mib * 2**20)
    found = bc.largest_batch(model, backend, budget_bytes=budget, max_batch=args.max_batch)
    if args.json:
        _print_json(dataclasses.asdict(found))
        return 0
    where = f"a budget of {args.budget_mib:g} MiB" if budget else "the device's memory"
    print(f"{model!r} on {found.backend}: the largest batch that fits {where} is {found.batch_size} rows "
          f"(peak {found.peak_bytes} bytes){'; max_batch fitted, the limit may be larger' if found.capped else ''}")
    print("steps (B, fitted, peak bytes): " + ", ".join(f"({b}, {ok}, {p})" for b, ok, p in found.steps))
    return 0


def run_study(args: argparse.Namespace) -> int:
    from .studies import digits

    study = digits.run(args.name, quick=args.quick)
    if args.out:
        study.to_json(args.out)
    if args.json:
        _print_json(study.to_dict())
    else:
        print(study)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="batchcore", description="What does the batch size change? Measure it.",
                                 epilog="With no command, `batchcore [options]` runs `batchcore sweep [options]`.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sweep = sub.add_parser("sweep", help="the quick-start sweep: torch, numpy and native orders over batch sizes")
    _sweep_arguments(sweep)
    sweep.set_defaults(run=run_sweep)

    report = sub.add_parser("report", help="one self-contained HTML page from sweeps and studies")
    report.add_argument("runs", nargs="+", help="sweep results (.json, .jsonl) and study results (.json)")
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--latency-ms", type=float, default=None, help="show the best batch whose p99 is within this")
    report.add_argument("--budget-bytes", type=int, default=None, help="draw this memory budget on the memory plot")
    report.set_defaults(run=run_report)

    compare = sub.add_parser("compare", help="two sweeps point by point: SAME, FASTER, SLOWER or UNSURE")
    compare.add_argument("old")
    compare.add_argument("new")
    compare.add_argument("--min-change", type=float, default=0.10, help="smallest change called a change (0.10)")
    compare.add_argument("--json", action="store_true", help="print the rows and counts as JSON")
    compare.set_defaults(run=run_compare)

    probe = sub.add_parser("probe", help="measured ceilings: fma peak, memory and cache bandwidth, clock")
    probe.add_argument("--device", default="cpu")
    probe.add_argument("--threads", type=int, default=None)
    probe.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    probe.add_argument("--json", action="store_true")
    probe.set_defaults(run=run_probe)

    tune = sub.add_parser("tune", help="the native GEMM's schedule, measured on this machine (docs/measurement.md)")
    tune.add_argument("--threads", type=int, default=None)
    tune.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    tune.add_argument("--json", action="store_true")
    tune.set_defaults(run=run_tune)

    largest = sub.add_parser("largest-batch", help="the largest batch of an MLP that fits a memory budget")
    largest.add_argument("--sizes", default=[784, 128, 10], type=_int_list, help="MLP layer sizes (default 784,128,10)")
    largest.add_argument("--activation", default="relu")
    largest.add_argument("--order", default="seq")
    largest.add_argument("--device", default="cpu")
    largest.add_argument("--budget-mib", type=float, default=None, help="bytes the pass may hold, in MiB (CPU: required)")
    largest.add_argument("--max-batch", type=int, default=1 << 24)
    largest.add_argument("--json", action="store_true")
    largest.set_defaults(run=run_largest_batch)

    from .studies.digits import STUDY_NAMES

    questions = "\n".join(f"  {name:12} {importlib.import_module(f'batchcore.studies.{name}').QUESTION}"
                          for name in STUDY_NAMES)
    study = sub.add_parser("study", help="one of the five questions, answered on scikit-learn's bundled digits",
                           description="Run one of the five studies on scikit-learn's bundled digits (needs "
                                       "pip install 'batchcore[examples]'; no download) and print its verdict "
                                       "and tables.", epilog="studies:\n" + questions,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_argument("name", choices=STUDY_NAMES, metavar="NAME", help=f"the study: {', '.join(STUDY_NAMES)}")
    study.add_argument("--quick", action="store_true", help="a smaller run (seconds): fewer epochs, sizes, samples")
    study.add_argument("--out", default=None, help="write the study as JSON (batchcore report reads it)")
    study.add_argument("--json", action="store_true", help="print the study (verdict, tables, data, env) as JSON")
    study.set_defaults(run=run_study)
    return ap


def main(argv: list[str] | None = None) -> int:
    import batchcore as bc

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "sweep")  # `batchcore [options]`: the sweep, as before there were commands
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except bc.BatchcoreError as e:
        print(f"batchcore: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
