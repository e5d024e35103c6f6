"""A summation tree drawn small: its sketch (:func:`batchcore.explain.tree.sketch`: the top levels, each chain
and each deeper subtree folded into one mark with its number of terms) as an inline SVG that the report
puts beside the tree's name. A fold is a triangle ("chain of 256" or "tree of 64"), a single term a dot,
an addition a node joined to its children (more than two children: a fused multi-term add)."""

from __future__ import annotations

import html
from typing import Any

SLOT = 30  # px per folded mark
LEVEL = 22  # px per level


def _slots(s: Any) -> int:
    return 1 if isinstance(s, dict) else sum(_slots(c) for c in s)


def _depth(s: Any) -> int:
    return 0 if isinstance(s, dict) else 1 + max(_depth(c) for c in s)


def _fold(s: dict[str, Any], x: float, y: float) -> list[str]:
    if s["kind"] == "term":
        return [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#333"/>']
    label = f"{s['n']:,}"
    colour = "#4a7" if s["kind"] == "chain" else "#58c"
    return [f'<path d="M{x:.1f},{y:.1f} l-8,12 h16 z" fill="{colour}" opacity="0.8"/>',
            f'<text x="{x:.1f}" y="{y + 21:.1f}" font-size="8" text-anchor="middle">{html.escape(label)}</text>']


def svg(sketch: Any, title: str = "") -> str:
    """The sketch as an inline SVG element (a string), ``title`` as its tooltip."""
    width = SLOT * _slots(sketch)
    height = LEVEL * _depth(sketch) + 30
    parts: list[str] = []

    def place(s: Any, left: float, level: int) -> float:
        """Draws ``s`` with its slots from ``left``; returns its x."""
        y = 6 + LEVEL * level
        if isinstance(s, dict):
            x = left + SLOT / 2
            parts.extend(_fold(s, x, y))
            return x
        xs, start = [], left
        for child in s:
            xs.append(place(child, start, level + 1))
            start += SLOT * _slots(child)
        x = sum(xs) / len(xs)
        for cx in xs:
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{cx:.1f}" y2="{y + LEVEL:.1f}" stroke="#666"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{"#c44" if len(s) > 2 else "#fff"}" '
                     'stroke="#333"/>')
        return x

    place(sketch, 0, 0)
    tip = f"<title>{html.escape(title)}</title>" if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img">{tip}{"".join(parts)}</svg>')
