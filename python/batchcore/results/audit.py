"""What a fleet audit found (:func:`batchcore.audit`): per backend and batch size, which nodes give the same
output bits, told apart by each row's SHA-256, and how far the machine kinds are apart where the outputs
were shipped. Written to and read from one JSON document."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from .. import files
from ..errors import ArgumentError, ResultFileError
from ..info import kind_name


@dataclass
class Audit:
    """``nodes``: node id -> its machine identity (``identity["kind"]`` its kind); ``digests``: backend label
    -> batch size -> node id -> the SHA-256 of each row's output bits; ``distances``: backend label -> batch
    size -> one record per group after the first (``ship_outputs=True``): the share of output elements
    whose bits differ from the first group's and the largest ULP distance; ``not_measured``: cells lost
    with their node, with the reason."""

    nodes: dict[str, dict[str, Any]]
    digests: dict[str, dict[int, dict[str, list[str]]]]
    distances: dict[str, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)
    not_measured: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[str, list[str]]:
        """Machine kinds (their digest) -> their node ids, kinds in the order their first node was listed."""
        out: dict[str, list[str]] = {}
        for node, identity in self.nodes.items():
            out.setdefault(identity["kind"], []).append(node)
        return out

    def kind_letter(self, node: str) -> str:
        """The node's kind as a letter (A for the first kind listed): what the table writes."""
        return string.ascii_uppercase[list(self.kinds).index(self.nodes[node]["kind"]) % 26]

    def _cells(self, backend_label: str, batch_size: int) -> dict[str, list[str]]:
        try:
            return self.digests[backend_label][batch_size]
        except KeyError:
            raise ArgumentError(f"the audit has no cell {backend_label} at B={batch_size} (backends: "
                                f"{sorted(self.digests)}; batch sizes: {self.config.get('batch_sizes')})") from None

    def groups(self, backend_label: str, batch_size: int) -> list[list[str]]:
        """The nodes whose outputs of ``backend_label`` at ``batch_size`` are identical bit for bit, every row:
        one list per set of bits, in the order of the nodes."""
        cells = self._cells(backend_label, batch_size)
        found: dict[tuple[str, ...], list[str]] = {}
        for node in [n for n in self.nodes if n in cells]:
            found.setdefault(tuple(cells[node]), []).append(node)
        return list(found.values())

    def rows_differ(self, backend_label: str, batch_size: int) -> list[float]:
        """For every group after the first: the share of rows whose bits differ from the first group's."""
        cells = self._cells(backend_label, batch_size)
        first, *rest = [cells[g[0]] for g in self.groups(backend_label, batch_size)]
        return [sum(a != b for a, b in zip(first, other, strict=True)) / len(first) for other in rest]

    def classes(self, backend_label: str, node: str) -> list[list[int]]:
        """On one node: the batch sizes whose outputs of ``backend_label`` are identical (its invariance classes)."""
        found: dict[tuple[str, ...], list[int]] = {}
        for B, cells in self.digests[backend_label].items():
            if node in cells:
                found.setdefault(tuple(cells[node]), []).append(B)
        return list(found.values())

    def describe_group(self, nodes: list[str]) -> str:
        kinds: dict[str, int] = {}
        for n in nodes:
            kinds[self.kind_letter(n)] = kinds.get(self.kind_letter(n), 0) + 1
        return " + ".join(f"{k}x{c}" for k, c in kinds.items())

    def table(self) -> str:
        """One line per (backend, batch size): the groups of nodes with identical bits (by kind letter and
        count), the share of rows that differ from the first group, and, with shipped outputs, the share of
        elements and the largest ULP distance; then the kinds' legend."""
        lines = [f"{'backend':<16} {'B':>5}  {'groups (kind x nodes)':<28} {'rows differ':>11} {'elements':>9} {'max ULP':>8}"]
        for label, by_size in self.digests.items():
            for B in by_size:
                groups = self.groups(label, B)
                differ = self.rows_differ(label, B)
                far = self.distances.get(label, {}).get(B, [])
                lines.append(f"{label:<16} {B:>5}  {' | '.join(map(self.describe_group, groups)):<28} "
                             f"{_share(max(differ, default=0)):>11} "
                             f"{_share(max((d['elements_differ'] for d in far), default=None)):>9} "
                             f"{max((d['max_ulp'] for d in far), default='-')!s:>8}")
        lines.append("kinds: " + "; ".join(f"{string.ascii_uppercase[i % 26]} = {kind_name(self.nodes[ids[0]])}, "
                                           f"{len(ids)} node(s)" for i, ids in enumerate(self.kinds.values())))
        lines += [f"not measured: {m['backend']} at B={m['batch_size']} on {m['node']}: {m['reason']}"
                  for m in self.not_measured]
        return "\n".join(lines)

    def summary(self) -> str:
        """Per backend, in words: one class on every node at every batch size, or per batch size which kinds
        agree and how far they are apart."""
        said = []
        for label, by_size in self.digests.items():
            if len({tuple(rows) for cells in by_size.values() for rows in cells.values()}) == 1:
                said.append(f"{label}: one class on every node at every B")
                continue
            if all(len(self.groups(label, B)) == 1 for B in by_size):
                first = next(iter(self.nodes))
                classes = " ".join("{" + ", ".join(map(str, c)) + "}" for c in self.classes(label, first))
                said.append(f"{label}: every node agrees at every B (on each: {classes})")
                continue
            parts = []
            for B in by_size:
                groups = self.groups(label, B)
                if len(groups) == 1:
                    parts.append(f"at B={B} every node agrees")
                    continue
                far = self.distances.get(label, {}).get(B, [])
                how = f"{100 * max(self.rows_differ(label, B)):.0f} % of rows differ"
                if far:
                    how = (f"{100 * max(d['elements_differ'] for d in far):.0f} % of elements differ, up to "
                           f"{max(d['max_ulp'] for d in far)} ULP")
                parts.append(f"at B={B} {len(groups)} groups: {' | '.join(map(self.describe_group, groups))} ({how})")
            said.append(f"{label}: " + "; ".join(parts))
        return "\n".join(said)

    def __str__(self) -> str:
        return self.summary() + "\n\n" + self.table()

    def to_dict(self) -> dict[str, Any]:
        return files.json_safe({"type": "audit", "config": self.config, "env": self.env, "nodes": self.nodes,
                                "digests": {k: {str(B): c for B, c in v.items()} for k, v in self.digests.items()},
                                "distances": {k: {str(B): d for B, d in v.items()} for k, v in self.distances.items()},
                                "not_measured": self.not_measured})

    def to_json(self, path: str | PathLike[str]) -> None:
        """Write the audit as one JSON document, atomically."""
        files.atomic_write(path, json.dumps(self.to_dict(), indent=1, allow_nan=False))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str = "the audit") -> Audit:
        try:
            return cls(doc["nodes"], {k: {int(B): c for B, c in v.items()} for k, v in doc["digests"].items()},
                       {k: {int(B): d for B, d in v.items()} for k, v in doc.get("distances", {}).items()},
                       doc.get("not_measured", []), doc.get("config", {}), doc.get("env", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ResultFileError(f"{where} is not a batchcore audit ({type(e).__name__}: {e})") from None

    @classmethod
    def from_json(cls, path: str | PathLike[str]) -> Audit:
        """Read a file written by :meth:`to_json`; ResultFileError names what is wrong with any other."""
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ResultFileError(f"cannot read {path} as an audit: {e}") from None
        if not isinstance(doc, dict) or doc.get("type") != "audit":
            raise ResultFileError(f"{path} is not a batchcore audit (no \"type\": \"audit\")")
        return cls.from_dict(doc, str(path))


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"
