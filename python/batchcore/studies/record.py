"""What a study produces: :class:`Study`, its question, its one-sentence verdict, its tables, the raw
figures behind them (``data``, for tests and plots) and the environment it ran in; written as one JSON
document (``"type": "study"``) that ``batchcore report`` turns into a section of its page."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Any

from .. import files
from ..present.text import text_table


@dataclass
class Table:
    """A titled table: column names and rows of plain values (str, int, float, None)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]

    def __str__(self) -> str:
        return f"{self.title}\n{text_table(self.columns, self.rows)}"


@dataclass
class Study:
    """The answer to one question: ``study`` (its name), ``question``, ``verdict`` (one sentence),
    ``tables``, ``notes`` (what the figures rest on), ``data`` (the raw figures), ``env`` (versions, machine)."""

    study: str
    question: str
    verdict: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [self.question, "", "Verdict: " + self.verdict, ""]
        parts += [str(t) + "\n" for t in self.tables]
        parts += [f"note: {n}" for n in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return files.json_safe({"type": "study", **asdict(self)})

    def to_json(self, path: str | PathLike[str]) -> None:
        """Write the study as one JSON document, atomically (``batchcore report`` reads it)."""
        files.atomic_write(path, json.dumps(self.to_dict(), indent=1, allow_nan=False))
