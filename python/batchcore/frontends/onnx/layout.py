"""Where the batch lies in an ONNX value: exported graphs move it (torch's attention works sequence-first
and merges the batch with the heads: (L, B, E) -> (L, B*H, d) -> (B*H, L, d)). The native graph holds
every value as one sample per row, so each value's full tensor is read as a layout of its samples: the
batch along one axis, alone or merged with ``group`` other entries (as the outer or the inner factor),
and the sample is the rest, in order (the axis dropped when alone, cut to ``group`` when merged).

A layout is found from the value's shapes at B = 2 and 3 (exactly one axis differs: 2 g vs 3 g); whether
a merged batch is the outer or the inner factor comes from how the value was made: a reshape keeps the
batch's stride in the flattened tensor (what mixes samples changes it, and is refused), a transpose moves
the axis, any other operation keeps it. A reshape is then a reshape of each sample, a transpose a
permutation of each sample's dimensions, and an operation along an axis one along that sample dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class BatchLayout:
    """The batch along full-tensor axis ``axis``: alone (``group`` 1), or merged with ``group`` entries
    per sample, the batch the outer factor (index b * group + j) or the inner one (j * B + b)."""

    axis: int
    group: int = 1
    outer: bool = True

    @property
    def batch_first(self) -> bool:
        return self.axis == 0 and self.group == 1

    def sample_shape(self, full: tuple[int, ...], batch: int) -> tuple[int, ...]:
        """One sample's shape, given the value's full shape at a batch of ``batch``."""
        assert full[self.axis] == batch * self.group
        if self.group == 1:
            return full[:self.axis] + full[self.axis + 1:]
        return full[:self.axis] + (self.group,) + full[self.axis + 1:]

    def sample_axis(self, axis: int) -> int | None:
        """A full-tensor axis (non-negative) as a sample dimension; None for the batch's own axis."""
        if axis == self.axis:
            return None
        return axis - 1 if self.group == 1 and axis > self.axis else axis

    def batch_stride(self, full: tuple[int, ...]) -> int:
        """How far apart consecutive samples' entries lie in the flattened tensor."""
        return prod(full[self.axis + 1:]) * (self.group if self.outer else 1)


def batch_axis(full2: tuple[int, ...], full3: tuple[int, ...]) -> tuple[int, int] | None:
    """(axis, group) of a value from its shapes at B = 2 and 3, or None when the batch is not along one axis."""
    if len(full2) != len(full3):
        return None
    differ = [i for i, (a, b) in enumerate(zip(full2, full3, strict=True)) if a != b]
    if len(differ) != 1:
        return None
    i = differ[0]
    if full2[i] % 2 or full3[i] % 3 or full2[i] // 2 != full3[i] // 3:
        return None
    return i, full2[i] // 2


def made_layout(op: str, source: BatchLayout, source_full: tuple[int, ...], full2: tuple[int, ...],
                full3: tuple[int, ...], perm: list[int] | None = None) -> BatchLayout | None:
    """The layout of a value operation ``op`` made from a value of layout ``source`` (full shape
    ``source_full`` at B = 2), or None when its samples are not kept apart (the caller refuses)."""
    found = batch_axis(full2, full3)
    if found is None:
        return None
    axis, group = found
    if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        stride, inner = source.batch_stride(source_full), prod(full2[axis + 1:])
        if stride == inner * group:
            return BatchLayout(axis, group, True)
        if group > 1 and stride == inner:
            return BatchLayout(axis, group, False)
        return None
    if group != source.group:
        return None
    if op == "Transpose" and perm is not None and perm[axis] != source.axis:
        return None
    return BatchLayout(axis, group, source.outer)
