"""A value of a graph being read from a Keras model (:mod:`.graph`, :mod:`.attention`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ref:
    """A value of the graph being read: its node's index and one sample's shape (Keras's layout)."""

    index: int
    shape: tuple[int, ...]
