"""``batchcore report run.jsonl [study.json ...] -o report.html``: one self-contained HTML page.

The page answers the questions for whatever the files hold: a sweep (JSON or JSON lines) gives "does the
batch size change the predictions?" (bits, flips, accuracy with intervals, classes) and "how fast, and
how much memory?" (latency and throughput with intervals, the knee, the best batch under a budget, peak
memory); each study file (:mod:`batchcore.studies`) adds its own section, its verdict first. The
environment of every run closes the page. Figures are PNGs embedded as data URLs and the style sheet is
inline: the page loads nothing from anywhere, so it opens offline, attached to a mail or in a CI artefact.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from . import files
from .errors import ArgumentError, ResultFileError
from .info import kind_name
from .present import plots, trees
from .results import decisions, numerics
from .results.audit import Audit
from .results.sweep_result import SweepResult

STYLE = """
body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto}
table.env td:last-child{text-align:left;font-family:monospace;font-size:.85em;word-break:break-word}
.wide{overflow-x:auto;max-width:100%}.wide pre{font-size:.8em;margin:0}
table.why td{text-align:left;vertical-align:middle}
.verdict{background:#eef6ee;border-left:4px solid #4a4;padding:.5em .8em}.note{color:#666;font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


class Html(str):
    """A table cell that is HTML already (escaped where it came from data)."""


def _fmt(value: Any) -> str:
    """One format per kind of figure: counts and ULP distances as whole numbers with thousands separated
    (a float that holds a whole number of them too), other numbers to 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) >= 1e4):
        return f"{int(value):,}"
    return format(value, ".4g")


def _cell(value: Any) -> str:
    return value if isinstance(value, Html) else _e(_fmt(value))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped (numbers formatted to 4 significant digits)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image(fig: Any, alt: str) -> str:
    """A figure as an embedded PNG."""
    data = base64.b64encode(plots.image_bytes(fig, "png")).decode("ascii")
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def _panels(points: list[dict], *draw: Any) -> Any:
    fig, axes = plots.figure(5.2 * len(draw), 3.6, 1, len(draw))
    for ax, fn in zip(axes, draw, strict=False):
        fn(ax, points)
    return fig


def accuracy_rows(result: SweepResult) -> list[list[Any]]:
    """Per point with an accuracy: backend, B, accuracy and its 95 % Wilson interval (in %), flips."""
    rows = result.config.get("rows")
    out = []
    for p in result.points:
        if p.get("accuracy") is None or not isinstance(rows, int) or rows <= 0:
            continue
        low, high = numerics.accuracy_interval(round(p["accuracy"] * rows), rows)
        out.append([p["backend"], p["batch_size"], 100 * p["accuracy"], f"[{100 * low:.2f}, {100 * high:.2f}]",
                    p.get("argmax_changed")])
    return out


def numbers_verdict(result: SweepResult) -> str:
    """One sentence per backend: batch invariant or how many classes, how far, how many flips."""
    classes = result.classes()
    parts = []
    for label, groups in classes.items():
        pts = [p for p in result.points if p["backend"] == label]
        flips = max((p.get("argmax_changed") or 0 for p in pts), default=0)
        if len(groups) == 1:
            parts.append(f"{label}: the same bits at every batch size.")
            continue
        worst = max((p.get("max_ulp_vs_b1") or 0 for p in pts), default=0)
        least = min((p.get("bitwise_equal_frac") or 0 for p in pts), default=0)
        parts.append(f"{label}: {len(groups)} classes of output bits; as few as {100 * least:.1f} % of the output "
                     f"elements keep B=1's bits, up to {worst} ULP apart; "
                     + ("no prediction changed." if flips == 0 else f"up to {flips} predictions changed."))
    return " ".join(parts)


def certainty(best: decisions.BestBatch) -> str:
    """How sure a best batch is, in words."""
    if best.batch_size is None:
        return best.reason or "no batch size meets the budget"
    if best.sure:
        return "sure: ahead beyond the intervals"
    parts = [f"tied with B={', '.join(map(str, best.tied))}" if best.tied else "",
             f"B={', '.join(map(str, best.budget_unsure))} straddle the budget" if best.budget_unsure else ""]
    return "; ".join(p for p in parts if p) or "not sure"


def sweep_sections(result: SweepResult, name: str, latency_ms: float | None, budget_bytes: int | None) -> str:
    """The numbers and the speed of one sweep."""
    points = result.points
    out = [f"<h2>Does the batch size change the predictions? <small>({_e(name)})</small></h2>",
           f"<p>Model: <code>{_e(result.config.get('model', '?'))}</code>, {_e(result.config.get('rows', '?'))} rows "
           "run in consecutive batches of B rows, each output compared bit for bit with the same backend at B=1.</p>",
           f'<p class="verdict">{_e(numbers_verdict(result))}</p>',
           image(_panels(points, plots.draw_bits, plots.draw_flips), "bitwise agreement and prediction flips against B")]
    fig, axes = plots.figure(10, 0.6 + 0.45 * len(result.classes()))
    plots.draw_classes(axes[0], points, result.classes())
    out.append(image(fig, "invariance classes per backend"))
    acc = accuracy_rows(result)
    if acc:
        out += ["<p>Accuracy per batch size, with its 95 % Wilson interval:</p>",
                table(["backend", "B", "accuracy %", "95 % CI %", "flips vs B=1"], acc)]
    out += [flips_section(result), why_section(result, name)]
    out += [f"<h2>How fast, and how much memory? <small>({_e(name)})</small></h2>",
            image(_panels(points, plots.draw_latency, plots.draw_throughput), "latency and throughput against B")]
    rows = []
    for label in dict.fromkeys(p["backend"] for p in points):
        knee = decisions.knee(points, backend=label)
        best = decisions.best_batch(points, latency_ms, "p99", label) if latency_ms else None
        rows.append([label, knee.batch_size if knee.batch_size is not None else "beyond the swept range",
                     "-" if best is None else best.batch_size, "-" if best is None else certainty(best)])
    columns = ["backend", "knee (next B buys < 5 % throughput)"]
    if latency_ms:
        columns += [f"best B with p99 <= {latency_ms:g} ms", "certainty"]
    out.append(table(columns, [r[:len(columns)] for r in rows]))
    fig, axes = plots.figure(6, 3.6)
    plots.draw_memory(axes[0], points, budget_bytes)
    out.append(image(fig, "peak memory against B"))
    out.append(f"<p>The full table:</p><div class=\"wide\"><pre>{_e(result.table())}</pre></div>")
    return "\n".join(out)


def why_section(result: SweepResult, name: str) -> str:
    """Why the bits differ (a sweep run with ``explain=True``): per backend, its batch sizes grouped by the tree
    of the first linear layer, each tree named or described and drawn small, and any silent precision change."""
    from .explain.points import groups

    grouped = groups(result.points)
    if not grouped:
        return ""
    rows = []
    for label, (head, parts) in grouped.items():
        for sizes, e in parts:
            if "why" in e:
                rows.append([label, "-", "-", e["why"], "", "", ""])
                continue
            drawn = Html(trees.svg(e["sketch"], e["drawn"] or "")) if e.get("sketch") else (e.get("drawn") or "-")
            fma = "-" if e.get("fused") is None else "no" if not e["fused"] else \
                f"yes, but {len(e['rounded_terms'])} terms rounded first" if e.get("rounded_terms") else "yes"
            kept = "yes" if e.get("float32", True) else Html(f"<b>no</b>: {_e(e.get('precision_cause'))}")
            rows.append([label, head, ", ".join(map(str, sizes)), e["tree"], fma, kept, drawn])
    out = [f"<h2>Why the bits differ <small>({_e(name)})</small></h2>",
           '<p class="verdict">' + "<br>".join(_e(line) for line in result.why().splitlines()) + "</p>",
           "<p>The summation tree each backend used for one output element of the model's first linear layer at each "
           "batch size, revealed by masking and checked to reproduce the backend's bits (<code>bc.reveal</code>). "
           "Batch sizes that share a tree share its rounding; a new tree is a new class of bits. In the drawings a "
           "green triangle is a chain (terms added one by one, its count below), a blue one a deeper subtree, a red "
           "node a fused multi-term add.</p>",
           table(["backend", "layer", "B", "tree", "fma", "float32", "drawn small"], rows).replace("<table>",
                                                                                                 '<table class="why">')]
    return "\n".join(out)


def flips_section(result: SweepResult, shown: int = 20) -> str:
    """The rows whose prediction changed with the batch size, each with its B=1 margin, the measured change and
    rounding's bound (:mod:`batchcore.explain.flips`), and the outputs beyond rounding's reach."""
    flips = [(p, f) for p in result.points for f in p.get("flips") or []]
    beyond = [p for p in result.points if p.get("beyond_rounding")]
    if not flips and not beyond:
        return ""
    out = ["<h3>Changed predictions: rounding or not?</h3>"]
    for p in beyond:
        out.append(f'<p class="verdict">{_e(p["backend"])} at B={p["batch_size"]}: {p["beyond_rounding"]:,} output '
                   "elements lie farther from the exactly rounded result than rounding in its precision can carry "
                   "them: it computed in less precision than it says, or its output depends on the batch.</p>")
    if flips:
        within = sum(p.get("flips_within_rounding") or 0 for p in result.points)
        suspect = sum(p.get("flips_suspect") or 0 for p in result.points)
        total = sum(p.get("argmax_changed") or 0 for p in result.points if p.get("flips") is not None)
        out += [f"<p>{total} changed predictions: {within} within rounding (the row sat on a decision boundary at "
                f"float resolution: its margin at B=1 is inside rounding's bound), {suspect} suspect (larger than "
                f"rounding can explain). Bound: {_e(flips[0][0].get('rounding_bound'))}.</p>",
                table(["backend", "B", "row", "label", "pred B=1", "pred B", "margin B=1", "Δ(pair)", "bound", "verdict"],
                      [[p["backend"], p["batch_size"], f["row"], "-" if f["label"] is None else f["label"], f["pred_b1"],
                        f["pred"], f["margin_b1"], f["pair_change"], f["rounding_bound"], f["verdict"]]
                       for p, f in flips[:shown]])]
    return "\n".join(out)


def study_section(study: dict[str, Any]) -> str:
    """A study's own section: its question, its verdict, its tables and figures (as the study wrote them)."""
    from .studies.figures import figures_of

    out = [f"<h2>{_e(study.get('question', study.get('study', 'study')))}</h2>",
           f'<p class="verdict">{_e(study.get("verdict", ""))}</p>']
    out += [image(fig, alt) for fig, alt in figures_of(study)]  # the picture before the numbers behind it
    for t in study.get("tables", []):
        out += [f"<p>{_e(t.get('title', ''))}</p>", table(t["columns"], t["rows"])]
    out += [f'<p class="note">{_e(note)}</p>' for note in study.get("notes", [])]
    return "\n".join(out)


def _plain(value: Any) -> Any:
    return ", ".join(map(str, value)) or "-" if isinstance(value, list) else value


def _env_value(value: Any) -> Any:
    """An environment field as people read it: a mapping as one ``key: value`` line per entry (a nested
    mapping's entries indented under its key), a list as its items separated by commas."""
    if not isinstance(value, dict):
        return _plain(value)
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{_e(key)}:")
            lines += [f"&nbsp;&nbsp;{_e(k)}: {_e(_fmt(_plain(v)))}" for k, v in item.items()]
        else:
            lines.append(f"{_e(key)}: {_e(_fmt(_plain(item)))}")
    return Html("<br>".join(lines) or "-")


def environment_section(envs: list[tuple[str, dict[str, Any]]]) -> str:
    """The environments the runs carry, each distinct one once (with the files that ran in it): versions,
    machine, build, thread settings, and the probed ceilings as a table of their own."""
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for name, env in envs:
        key = json.dumps({k: v for k, v in env.items() if k != "probes"}, sort_keys=True, default=str)
        groups.setdefault(key, ([], env))[0].append(name)
    out = ["<h2>Environment</h2>"]
    for names, env in groups.values():
        rows = [[k, _env_value(v)] for k, v in env.items() if k != "probes"]
        out += [f"<p><b>{_e(', '.join(names))}</b>: {_e(plots.machine(env))}</p>",
                table(["field", "value"], rows).replace("<table>", '<table class="env">')]
        probes = [(label, c) for label, c in (env.get("probes") or {}).items() if isinstance(c, dict) and "peak_gflops" in c]
        if probes:
            out.append(table(["backend", "device", "threads", "fma peak GFLOP/s", "memory GB/s", "cache GB/s", "measured"],
                             [[label, c.get("device"), c.get("threads"), c.get("peak_gflops"), c.get("bandwidth_gbs"),
                               c.get("cache_bandwidth_gbs"), c.get("measured_at")] for label, c in probes]))
    return "\n".join(out)


def audit_section(audit: Audit, name: str) -> str:
    """A fleet audit (``bc.audit``): per backend in words, then which groups of nodes give identical bits at
    each batch size (by machine kind: letter x nodes) and how far apart they are, then the kinds."""
    out = [f"<h2>Fleet audit: the same bits on every node? ({_e(name)})</h2>"]
    out += [f'<p class="verdict">{_e(line)}</p>' for line in audit.summary().splitlines()]
    rows = []
    for label, by_size in audit.digests.items():
        for B in by_size:
            far = audit.distances.get(label, {}).get(B, [])
            rows.append([label, B, " | ".join(map(audit.describe_group, audit.groups(label, B))),
                         f"{100 * max(audit.rows_differ(label, B), default=0):.1f} %",
                         f"{100 * max(d['elements_differ'] for d in far):.1f} %" if far else None,
                         max((d["max_ulp"] for d in far), default=None)])
    out.append(table(["backend", "B", "groups of identical bits (kind x nodes)", "rows differ", "elements differ",
                      "max ULP"], rows))
    out.append(table(["kind", "machine", "nodes"], [[audit.kind_letter(ids[0]), kind_name(audit.nodes[ids[0]]), ", ".join(ids)]
                                                   for ids in audit.kinds.values()]))
    out += [f'<p class="note">not measured: {_e(m["backend"])} at B={m["batch_size"]} on {_e(m["node"])}: {_e(m["reason"])}</p>'
            for m in audit.not_measured]
    return "\n".join(out)


def load(path: str | os.PathLike[str]) -> SweepResult | Audit | dict[str, Any]:
    """A sweep (JSON or JSON lines), a fleet audit (``"type": "audit"``) or a study (a JSON document with
    ``"type": "study"``)."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        doc = None  # not one JSON document: files.load names what is wrong
    if isinstance(doc, dict) and doc.get("type") == "study":
        if not isinstance(doc.get("study"), str) or not isinstance(doc.get("env", {}), dict):
            raise ResultFileError(f"{os.fspath(path)}: a study record needs a 'study' name and an 'env' object")
        return doc
    if isinstance(doc, dict) and doc.get("type") == "audit":
        return Audit.from_dict(doc, os.fspath(path))
    return SweepResult.from_json(path)


def render(paths: Sequence[str | os.PathLike[str]], latency_ms: float | None = None,
           budget_bytes: int | None = None) -> str:
    """The page for these result files, as a string."""
    if not paths:
        raise ArgumentError("report needs at least one result file (a sweep's .json/.jsonl or a study's .json)")
    body, envs = [], []
    for path in paths:
        name = os.path.basename(os.fspath(path))
        run = load(path)
        if isinstance(run, SweepResult):
            if not run.points:
                raise ResultFileError(f"{os.fspath(path)} holds no measured point yet")
            body.append(sweep_sections(run, name, latency_ms, budget_bytes))
            envs.append((name, run.env))
        elif isinstance(run, Audit):
            body.append(audit_section(run, name))
            envs.append((name, run.env))
        else:
            body.append(study_section(run))
            envs.append((name, run.get("env", {})))
    title = "What does the batch size change?"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>batchcore: {_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>batchcore: {_e(title)}</h1>"
            f"<p class=\"note\">From {', '.join(_e(os.path.basename(os.fspath(p))) for p in paths)}.</p>"
            + "\n".join(body) + environment_section(envs) + "</body></html>\n")


def write(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], latency_ms: float | None = None,
          budget_bytes: int | None = None) -> None:
    """Render the page and write it atomically to ``out``."""
    files.atomic_write(out, render(paths, latency_ms, budget_bytes))
