"""Progress of long operations (sweep points, training, the largest-batch search) on the terminal.

A bar with the current step (backend, batch size, round), steps done, elapsed time and time left, drawn
by ``rich`` on standard error, and only when standard error is a terminal: logs, pipes, CI and notebooks'
captured output stay clean. ``BATCHCORE_PROGRESS=1`` forces it on, ``=0`` off; a function's own
``progress=`` argument (True/False) overrides both.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from ..errors import ArgumentError


def enabled(progress: bool | None) -> bool:
    """Whether to draw: ``progress`` when it is True/False, else ``BATCHCORE_PROGRESS``, else whether
    standard error is a terminal."""
    if progress is not None:
        if not isinstance(progress, bool):
            raise ArgumentError(f"progress must be True, False or None (on a terminal only), got {progress!r}")
        return progress
    forced = os.environ.get("BATCHCORE_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    from rich.console import Console

    return Console(stderr=True).is_terminal


class Steps:
    """``with Steps("sweep", total=n, progress=None) as steps: steps.now("torch[cpu] B=8"); ...; steps.done()``

    ``now(note)`` names the step being run; ``done()`` counts one finished. When not drawing, both do nothing."""

    def __init__(self, description: str, total: int | None, progress: bool | None = None) -> None:
        self._bar: Any = None
        if enabled(progress):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(stderr=True)
            # On a terminal the bar goes when done; drawn elsewhere (forced), its last state stays as a line.
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[note]}"), console=console, transient=console.is_terminal)
            self._task = self._bar.add_task(description, total=total, note="")

    def __enter__(self) -> Steps:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def drawing(self) -> bool:
        return self._bar is not None

    def now(self, note: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, note=note)

    def done(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def total(self, total: int) -> None:
        """Change the number of steps (a search that learns its length as it goes)."""
        if self._bar is not None:
            self._bar.update(self._task, total=total)
