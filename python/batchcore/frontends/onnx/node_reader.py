"""The part of the ONNX reader that every operator shares (:mod:`.graph_ops` reads the operators): the values
learnt from ONNX Runtime's runs, where each keeps its batch (:mod:`.layout`), constants, operands and
refusals that name the node, its operator and where it comes from."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import NonFiniteError, UnsupportedLayerError
from ...model.graph import GraphNode
from .layout import BatchLayout, made_layout


def as_f32(a: np.ndarray, what: str) -> np.ndarray:
    out = np.array(a, dtype=np.float32, order="C")
    if not np.isfinite(out).all():
        raise NonFiniteError(f"{what} contains NaN or Inf")
    return out


def _where(node: Any) -> str:
    """Where a node comes from: the last frame outside torch of the stack torch's exporter recorded, else its
    module path, else nothing."""
    props = {p.key: p.value for p in node.metadata_props}
    lines = props.get("pkg.torch.onnx.stack_trace", "").splitlines()
    frames = [(f.strip(), code.strip()) for f, code in zip(lines, [*lines[1:], ""], strict=False)
              if f.strip().startswith('File "') and "/torch/" not in f]
    if frames:
        frame, code = frames[-1]
        return f" at {frame.removeprefix('File ')} ({code})"
    if "namespace" in props:
        return f" from {props['namespace'].split('/')[-2].strip(': ') if '/' in props['namespace'] else props['namespace']}"
    return ""


class NodeReader:
    """One pass over an ONNX graph's nodes in order (the operators themselves: :class:`.graph_ops.OnnxReader`).
    ``runs``: every value at B = 2 and 3; ``consts``: the values that do not depend on the input's data
    (initializers first)."""

    def __init__(self, runs: dict[int, dict[str, np.ndarray]], initializers: dict[str, np.ndarray]):
        self.runs = runs
        self.consts: dict[str, np.ndarray] = dict(initializers)
        self.ids: dict[str, int] = {}          # value name -> graph node (values that depend on the input)
        self.layouts: dict[str, BatchLayout] = {}  # where the batch lies in each of those (:mod:`.layout`)
        self.shape_made: set[str] = set()      # values made from the input's shape that differ with B
        self.nan_tests: dict[str, str] = {}    # IsNaN's output -> the value it tests (for Where's NaN guard)
        self.nodes: list[GraphNode] = []
        self.node: Any = None

    # -- helpers --------------------------------------------------------------------------------------
    def refuse(self, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"node {self.node.name!r} ({self.node.op_type}){_where(self.node)}: {why}")

    def sample(self, name: str) -> tuple[int, ...] | None:
        """One sample's shape of a value that depends on the input (as its layout reads it), else of a
        batch-first value (its runs' first dimension 2 and 3), else None."""
        if name in self.layouts:
            return self.layouts[name].sample_shape(self.full(name), 2)
        v2, v3 = self.runs[2].get(name), self.runs[3].get(name)
        if v2 is None or v3 is None or v2.ndim == 0 or v2.shape[0] != 2 or v3.shape[0] != 3 or v2.shape[1:] != v3.shape[1:]:
            return None
        return tuple(int(d) for d in v2.shape[1:])

    def full(self, name: str) -> tuple[int, ...]:
        """A value's full shape at B = 2."""
        return tuple(int(d) for d in self.runs[2][name].shape)

    def layout(self, i: int = 0) -> BatchLayout:
        """Operand ``i``'s layout (it depends on the input)."""
        self.data(i)
        return self.layouts[self.operand(i)]

    def same_layouts(self) -> None:
        """Refuses operands that depend on the input unless their batches lie alike (same rank and layout)."""
        names = [i for i in self.node.input if i in self.ids]
        if len({(self.layouts[n], len(self.full(n))) for n in names}) > 1:
            raise self.refuse("its operands hold the batch in different places, which would mix samples")

    def batch_first(self, i: int = 0) -> None:
        """Refuses unless operand ``i`` holds the batch as its first dimension, alone (images, token ids)."""
        if not self.layout(i).batch_first:
            raise self.refuse("it needs the batch as the first dimension of its operand, which the graph moved")

    def add(self, kind: str, inputs: tuple[int, ...], out_shape: tuple[int, ...] | None = None, **params: Any) -> int:
        out = self.sample(self.node.output[0]) if out_shape is None else out_shape
        assert out is not None  # read() checked it
        self.nodes.append(GraphNode(kind, inputs, params, tuple(out), self.node.name, _where(self.node).strip()))
        return len(self.nodes) - 1

    def attr(self, name: str, default: Any = None) -> Any:
        import onnx

        for a in self.node.attribute:
            if a.name == name:
                value = onnx.helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def operand(self, i: int) -> str:
        return self.node.input[i] if len(self.node.input) > i else ""

    def const(self, i: int, what: str) -> np.ndarray | None:
        """Operand ``i`` as a constant (None when absent); refused when it depends on the input."""
        name = self.operand(i)
        if not name:
            return None
        if name not in self.consts:
            raise self.refuse(f"its {what} depends on the input; only fixed values are supported there")
        return self.consts[name]

    def data(self, i: int = 0) -> int:
        name = self.operand(i)
        if name not in self.ids:
            raise self.refuse(f"its operand {i} ({name!r}) does not depend on the input")
        return self.ids[name]

    def value(self, i: int) -> int:
        """The graph node of an operand: an input-dependent value, or a float constant made a node here (its
        leading dimensions of size 1 beyond the result's rank dropped: they broadcast over the batch)."""
        name = self.operand(i)
        if name in self.ids:
            return self.ids[name]
        c = self.const(i, "operand")
        assert c is not None
        if c.dtype.kind != "f":
            raise self.refuse(f"an operand is {c.dtype}, not a float constant")
        out = self.layouts[self.node.output[0]]
        full_rank = len(self.full(self.node.output[0]))
        if c.ndim > full_rank:
            raise self.refuse(f"a constant of shape {c.shape} would differ from sample to sample")
        shape: tuple[int, ...] = (1,) * (full_rank - c.ndim) + tuple(c.shape)  # broadcasting aligns the last dims
        if shape[out.axis] != 1:
            raise self.refuse(f"a constant of shape {c.shape} would differ from sample to sample")
        if out.group == 1:
            shape = shape[:out.axis] + shape[out.axis + 1:]
        ones = next((i for i, d in enumerate(shape) if d != 1), len(shape))
        c = c.reshape(shape[ones:])  # leading ones broadcast in the core too
        self.nodes.append(GraphNode("constant", (), {"value": as_f32(c, name)}, tuple(c.shape), name, ""))
        return len(self.nodes) - 1

    def axis(self, axis: int, rank: int) -> int:
        """A full-tensor axis of operand 0 (``rank`` dimensions) as a sample dimension."""
        d = self.layout(0).sample_axis(int(axis) % rank)
        if d is None:
            raise self.refuse("it works along the batch dimension, which would mix samples")
        return d

    # -- one node -------------------------------------------------------------------------------------
    def read(self, node: Any) -> None:
        self.node = node
        outputs = [o for o in node.output if o]
        on_data = any(i in self.ids for i in node.input if i)
        if not on_data or node.op_type in ("Shape", "Size"):
            for o in outputs:
                self._not_on_data(o)
            return
        if node.op_type == "IsNaN":  # read with the Where that uses it (see where())
            self.nan_tests[node.output[0]] = node.input[0]
            return
        source = next(i for i in node.input if i in self.ids)
        perm = list(self.attr("perm", [])) or None
        for o in outputs if node.op_type == "Split" else outputs[:1]:
            made = made_layout(node.op_type, self.layouts[source], self.full(source), self.full(o),
                               tuple(self.runs[3][o].shape), perm)
            if made is None:
                raise self.refuse("its result depends on the input but does not keep the samples apart along one "
                                  "dimension (it would mix samples)")
            self.layouts[o] = made
        if node.op_type == "Split":
            for o, part in zip(outputs, self.split(), strict=True):
                self.ids[o] = part
            return
        self.ids[node.output[0]] = self.read_op(node.op_type)

    def _not_on_data(self, name: str) -> None:
        """A value that does not depend on the input's data: a constant when it is the same at B = 2 and 3
        (or batch-first and the same for every sample: one sample of it, broadcast), else made from the batch size."""
        v2, v3 = self.runs[2].get(name), self.runs[3].get(name)
        if v2 is None or v3 is None:
            return
        if v2.shape == v3.shape and np.array_equal(v2, v3):
            self.consts[name] = v2
        elif v2.ndim and v2.shape[0] == 2 and v3.shape[0] == 3 and v2.shape[1:] == v3.shape[1:] and \
                all(np.array_equal(v[0], v[i]) for v in (v2, v3) for i in range(len(v))):
            self.consts[name] = v2[:1]
        else:
            self.shape_made.add(name)

    # -- the operators --------------------------------------------------------------------------------

    def read_op(self, op: str) -> int:  # pragma: no cover - graph_ops.OnnxReader reads the operators
        raise NotImplementedError

    def split(self) -> list[int]:  # pragma: no cover - likewise
        raise NotImplementedError

    def _rank(self) -> int:
        return len(self.full(self.operand(0)))
