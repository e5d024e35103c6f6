"""Rendering sweep results for people: the table and the invariance classes as plain text."""

from __future__ import annotations

import math


def _fmt(v: object, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


# (header, field or function, format)
COLUMNS = [
    ("backend", "backend", "s"),
    ("B", "batch_size", "d"),
    ("time ms", "time_ms", ".4g"),
    ("95% CI", lambda p: f"[{_fmt(p.get('time_ms_ci_low'), '.4g')}, {_fmt(p.get('time_ms_ci_high'), '.4g')}]", "s"),
    ("n", "samples", "d"),
    # "yes": the CI met the timer's target; "no": it timed out first; "!" marks IQR/median > 10 %.
    ("target", lambda p: "-" if p.get("target_met") is None else
     ("yes" if p["target_met"] else "no") + ("!" if p.get("noisy") else ""), "s"),
    ("rows/s", "samples_per_s", ".4g"),
    ("GFLOP/s", "gflops", ".3g"),
    # of the measured fma peak, and of the roofline min(peak, bandwidth x intensity): who bounds the point
    # over 100 only when the machine's speed changed under the probe: marked "!" (the sweep warns too)
    ("%peak", lambda p: None if p.get("peak_frac") is None else
        f"{100 * p['peak_frac']:.0f}" + ("!" if p["peak_frac"] > 1 else ""), "s"),
    ("%roof", lambda p: None if p.get("roofline_frac") is None else 100 * p["roofline_frac"], ".0f"),
    # exact where the core's tracking allocator counted it; "~" marks memory read from outside (torch's
    # counters on a GPU, RSS growth on the CPU: see the point's memory_method)
    ("peak MiB", lambda p: None if p["peak_bytes"] is None else
        ("" if (p.get("memory_method") or "").endswith("(exact)") else "~") + format(p["peak_bytes"] / 2**20, ".3f"), "s"),
    ("=B1 bits", "bitwise_equal_frac", ".4f"),
    ("maxULP B1", "max_ulp_vs_b1", "d"),
    ("argmax Δ", "argmax_changed", "d"),
    ("acc", "accuracy", ".4f"),
    ("maxULP exact", "max_ulp_vs_exact", "d"),
    ("class", "class_id", "d"),
]


def text_table(columns: list[str], rows: list[list[object]]) -> str:
    """Columns aligned, the first to the left and the others to the right, a rule under the header;
    numbers to 4 significant digits, None as ``-``."""
    cells = [list(columns)] + [[v if isinstance(v, str) else _fmt(v, "d" if isinstance(v, int) and not isinstance(v, bool)
                                                                   else ".4g" if isinstance(v, float) else "") for v in r]
                               for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for j, r in enumerate(cells):
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False)))
        lines.append("  ".join(padded).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(points: list[dict]) -> str:
    """One row per (backend, batch size), columns aligned."""
    return text_table([h for h, _, _ in COLUMNS],
                      [[_fmt(f(p) if callable(f) else p.get(f), spec) for _, f, spec in COLUMNS] for p in points])


class Classes(dict):
    """``{backend label: [[batch sizes with identical output bits], ...]}``; one class = batch invariant."""

    def __str__(self) -> str:
        width = max((len(k) for k in self), default=0)
        lines = []
        for label, groups in self.items():
            verdict = "batch invariant" if len(groups) == 1 else f"{len(groups)} classes"
            body = "  ".join("{" + ", ".join(map(str, g)) + "}" for g in groups)
            lines.append(f"{label.ljust(width)}  {verdict:>15}:  {body}")
        return "\n".join(lines)
