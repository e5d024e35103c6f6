"""``bc.reveal``: the summation tree a backend's linear layer uses for one output element at batch size M,
found by masking (the method of FPRev, Xie et al., USENIX ATC'25; written here from its description).

Query (i, j): the target row's inputs are all 1 except a_i = +big and a_j = -big, the weights all 1. Every
1 that meets big's partial sum before i and j meet is absorbed (big is 2^(26 + log2 K)), the two cancel where
they meet, and every 1 outside that subtree is counted exactly, so the element is K - |LCA(i, j)|: the size
of the smallest subtree holding both. From leaf i = the smallest, the sizes group the other leaves by the
node where they join i's path to the root; the leaves of one group that join each other below that node form
its children (several: a fused multi-term add). A tree is then **validated, not trusted**: recomputed in
float32 (products fused into their first add, as by fma, or rounded first; where neither holds for every
term, one query per term says which enter by fma) on random rows, it must give the library's bits on every
one of them; a tree that does not, or answers that fit no tree (a compensated
or exact sum recovers what big absorbed), is reported as "not a fixed tree". Last, the layer is held to
float32's error bound for the tree it used (:mod:`.precision`): a library that computed in fewer bits is
flagged (``RevealedTree.float32``, ``.precision``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import checks
from ..errors import ArgumentError
from .layers import layer_for
from .precision import check as check_precision
from .tree import Tree, canonical, describe, draw, evaluate, hold_depth, joins, leaves, named_trees

MAX_K = 1 << 16  # a chain of K terms is a tree K levels deep


class NotAFixedTree(Exception):
    """The answers to the queries fit no summation tree."""


@dataclass
class RevealedTree:
    """What :func:`reveal` found: ``tree`` (nested tuples, see :mod:`batchcore.explain.tree`; None when the
    answers fit no tree), ``name`` (a named order of docs/orders.md, or None), ``description``, ``fixed``
    (the tree reproduced the library's bits on every checked row), ``fused`` (products entered by fma, as
    seq's; False: rounded first; None when not fixed), ``rounded_terms`` (where ``fused``, the terms whose
    products were rounded before they were added all the same, e.g. a kernel's tail; empty when none),
    ``reproduced`` (rows whose bits it reproduced, of
    ``checked``), ``queries`` (library calls made to find it), ``seconds``, and the setting: ``backend``
    (its label), ``K``, ``batch_size``, ``N``, ``row``, ``column``, ``settings`` (the backend's)."""

    backend: str
    K: int
    batch_size: int
    N: int
    row: int
    column: int
    tree: Tree | None
    name: str | None
    description: str
    fixed: bool
    fused: bool | None
    reproduced: int
    checked: int
    queries: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] = field(default_factory=dict)
    rounded_terms: tuple[int, ...] = ()

    @property
    def float32(self) -> bool:
        """Whether the layer stayed within float32's error bound for its tree (:mod:`.precision`): False
        flags a silent precision change (``precision["cause"]`` says which)."""
        return bool(self.precision.get("float32", True))

    def __str__(self) -> str:
        what = self.name or self.description
        flag = "" if self.float32 else f"  [not float32: {self.precision['cause']}]"
        return f"{self.backend} at B={self.batch_size}, K={self.K}: {what}{flag}" + (
            "" if self.tree is None else f"  {draw(self.tree)}")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Probe:
    """One output element of a backend's linear layer (N x K) at batch size M: row ``row``, column ``column``,
    the layer in a form the backend runs (:mod:`.layers`)."""

    def __init__(self, backend: Any, K: int, M: int, N: int, row: int, column: int):
        self.backend, self.K, self.M, self.N, self.row, self.column = backend, K, M, N, row, column
        self.calls = 0

    def model(self, weight: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return layer_for(self.backend, weight)

    def element(self, layer: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.float32:
        self.calls += 1
        return np.float32(layer(x)[self.row, self.column])


def _build(S: list[int], size_of: Any) -> Tree:
    """The subtree over leaves S (a subtree's leaves), from ``size_of(i, j)`` = |LCA(i, j)|."""
    if len(S) == 1:
        return S[0]
    i = S[0]
    groups: dict[int, list[int]] = defaultdict(list)
    for j in S[1:]:
        groups[size_of(i, j)].append(j)
    node: Tree = i
    covered = 1
    for s in sorted(groups):
        group = groups[s]
        if covered + len(group) != s or s > len(S):
            raise NotAFixedTree(f"leaves {i} and {group[0]} meet in a subtree of {s} terms, which holds {covered} "
                                f"+ {len(group)}")
        children: list[Tree] = []
        rest = sorted(group)
        while rest:
            a = rest[0]
            same = [a] + [b for b in rest[1:] if size_of(a, b) < s]
            children.append(_build(same, size_of))
            rest = [b for b in rest if b not in set(same)]
        node = (node, *children)
        covered = s
    return node


def reveal(backend: Any, K: int, batch_size: int = 1, N: int = 16, row: int = 0, column: int = 0,
           check_rows: int = 1000, seed: int = 0) -> RevealedTree:
    """The summation tree ``backend`` (as in a sweep: ``bc.native(order=...)``, ``bc.torch()``,
    ``bc.numpy()``, ...) uses for output element (``row``, ``column``) of a linear layer of K inputs and N
    outputs at batch size ``batch_size``, found by masking and checked on ``check_rows`` random rows (see
    the module's docstring). ArgumentError for settings out of range. Python's recursion limit is raised to
    hold a tree K levels deep (a chain)."""
    K = checks.positive_int(K, "K", maximum=MAX_K)
    M = checks.positive_int(batch_size, "batch_size")
    N = checks.positive_int(N, "N")
    if not 0 <= row < M or not 0 <= column < N:
        raise ArgumentError(f"row {row} and column {column} must lie in the batch of {M} rows and the {N} outputs")
    check_rows = checks.positive_int(check_rows, "check_rows")
    hold_depth(K)
    start = time.perf_counter()
    probe = _Probe(backend, K, M, N, row, column)
    ones = probe.model(np.ones((N, K), np.float32))
    big = np.float32(2.0 ** (26 + math.ceil(math.log2(K + 1))))
    x = np.ones((M, K), np.float32)
    answers: dict[tuple[int, int], int] = {}

    def size_of(i: int, j: int) -> int:
        key = (i, j) if i < j else (j, i)
        if key not in answers:
            x[row, i], x[row, j] = big, -big
            y = probe.element(ones, x)
            x[row, i] = x[row, j] = 1.0
            count = K - float(y)
            if not (count == int(count) and 2 <= count <= K):
                raise NotAFixedTree(f"the query ({i}, {j}) gave {float(y)!r}, which no summation tree gives "
                                    "(a compensated or exact sum, or a data-dependent order)")
            answers[key] = int(count)
        return answers[key]

    tree: Tree | None
    why = ""
    try:
        tree = canonical(_build(list(range(K)), size_of)) if K > 1 else 0
        if sorted(leaves(tree)) != list(range(K)):
            raise NotAFixedTree("the answers do not cover every term once")
    except NotAFixedTree as e:
        tree, why = None, str(e)
    reproduced, name = 0, None
    fused: bool | frozenset[int] | None = None
    if tree is not None:
        reproduced, fused, name = _check(probe, tree, check_rows, seed)
    fixed = tree is not None and reproduced == check_rows
    rounded: tuple[int, ...] = ()
    if fixed:
        assert tree is not None
        if isinstance(fused, frozenset):
            rounded = _rounded_terms(tree, fused)
            fused = True
        description = name or describe(tree, K) + (
            f"; products by fma except terms {_ranges(rounded)} (rounded first)" if rounded else "")
    else:
        name = None
        description = f"not a fixed tree: {why}" if tree is None else (
            f"not a fixed tree: the revealed tree reproduces {reproduced} of {check_rows} rows (data-dependent, "
            "multi-term fused in another way, or nondeterministic)")
    precision = check_precision(lambda x: probe.element(ones, x), tree, K, M, row)
    settings = backend.settings() if hasattr(backend, "settings") else {}
    return RevealedTree(getattr(backend, "label", type(backend).__name__), K, M, N, row, column, tree, name,
                        description, fixed, bool(fused) if fixed else None, reproduced, check_rows, probe.calls,
                        time.perf_counter() - start, settings, precision, rounded)


# One term's product c * c = 1 + 2^-11 + 2^-24 is a tie in float32 and rounds to 1 + 2^-11 (even); added to
# its partner's -c, the exact 2^-12 + 2^-24 (by fma) and 2^-12 (rounded first) tell the two apart.
_FMA_TEST = np.float32(1 + 2.0**-12)
_BY_FMA, _ROUNDED_FIRST = np.float32(2.0**-12 + 2.0**-24), np.float32(2.0**-12)


def _fma_terms(probe: _Probe, tree: Tree) -> frozenset[int] | None:
    """The terms that enter their partial sum by one fma, one query per term: the term's input c, its
    partner's (a term of the partial sum it joins, :func:`~batchcore.explain.tree.joins`) -1, every other
    input 0, the weights all c. None when an answer is neither (the library rounds its inputs or products to
    fewer bits)."""
    model = probe.model(np.full((probe.N, probe.K), _FMA_TEST, np.float32))
    x = np.zeros((probe.M, probe.K), np.float32)
    terms = set()
    for k, partner in joins(tree).items():
        x[probe.row, k], x[probe.row, partner] = _FMA_TEST, -1.0
        y = probe.element(model, x)
        x[probe.row, k] = x[probe.row, partner] = 0.0
        if y == _BY_FMA:
            terms.add(k)
        elif y != _ROUNDED_FIRST:
            return None
    return frozenset(terms)


def _rounded_terms(tree: Tree, by_fma: frozenset[int]) -> tuple[int, ...]:
    """Terms rounded before they were added among fused ones, less those that had to be: the lower of two
    joined terms whose higher entered by fma (its product is the fma's addend)."""
    addends: set[int] = set()
    stack = [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, int):
            continue
        pair = [c for c in n if isinstance(c, int)]
        if len(n) == 2 and len(pair) == 2 and by_fma.intersection(pair):
            addends.update(pair)
        stack.extend(n)
    return tuple(sorted(k for k in joins(tree) if k not in by_fma and k not in addends))


def _ranges(terms: Iterable[int]) -> str:
    """3, 5, 6, 7 -> '3, 5-7'."""
    runs: list[list[int]] = []
    for k in sorted(terms):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _check(probe: _Probe, tree: Tree, rows: int, seed: int) -> tuple[int, bool | frozenset[int], str | None]:
    """Rows (of ``rows`` random ones) whose library bits the tree reproduces, whether fused products did it
    (True, False, or the terms that entered by fma), and the named order that did. A tree of a named order's
    shape is recomputed by that order's definition (``bc.orders.dot``, itself checked against exact
    rationals; seq's shape by seq and seq-nofma), any other by :func:`~batchcore.explain.tree.evaluate` with
    products fused into their first add and rounded first; where neither reproduces every row, with the
    terms that :func:`_fma_terms` finds entering by fma; the best is kept."""
    from ..measure.orders import dot

    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((probe.N, probe.K)).astype(np.float32)
    model = probe.model(weight)
    A = rng.standard_normal((rows, probe.K)).astype(np.float32)
    got = np.empty(rows, np.float32)
    x = rng.standard_normal((probe.M, probe.K)).astype(np.float32)
    for r in range(rows):
        x[probe.row] = A[r]
        got[r] = probe.element(model, x)
    w = weight[probe.column]
    named = [name for name, t in named_trees(probe.K).items() if t == tree]  # several at small K
    best: tuple[int, bool | frozenset[int], str | None] = (-1, True, None)
    for order in (["seq", "seq-nofma"] if "seq" in named else []) + [n for n in named if n != "seq"]:
        want = np.array([dot(a, w, 0.0, order) for a in A], np.float32)
        same = int((want.view(np.uint32) == got.view(np.uint32)).sum())
        best = max(best, (same, order != "seq-nofma" and order != "pairwise", order), key=lambda b: b[0])
    if best[0] == rows:
        return best
    def reproduced(fused: bool | frozenset[int]) -> int:
        want = evaluate(tree, A, np.broadcast_to(w, A.shape), fused) + np.float32(0)
        return int((want.view(np.uint32) == got.view(np.uint32)).sum())

    for fused in (True, False):
        best = max(best, (reproduced(fused), fused, None), key=lambda b: b[0])
    if best[0] < rows and (by_fma := _fma_terms(probe, tree)) is not None:
        best = max(best, (reproduced(by_fma), by_fma, None), key=lambda b: b[0])
    return best


@dataclass
class TreesByBatch:
    """:func:`reveal_sweep`'s answer: ``trees`` (batch size -> :class:`RevealedTree`) and ``groups`` (the batch
    sizes whose element used the same tree, in order of first appearance; a tree that is not fixed is a
    group of its own)."""

    trees: dict[int, RevealedTree]
    groups: list[list[int]]

    def table(self) -> str:
        lines = []
        for group in self.groups:
            found = self.trees[group[0]]
            what = found.name or found.description
            lines.append(f"B = {', '.join(map(str, group))}: {what}" + (f"  {draw(found.tree)}" if found.tree else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def reveal_sweep(backend: Any, K: int, batch_sizes: Iterable[int] = (1, 2, 3, 8, 64), **options: Any) -> TreesByBatch:
    """:func:`reveal` at each batch size (``options`` as its), the batch sizes grouped by the tree found."""
    sizes = [checks.positive_int(B, "batch size") for B in batch_sizes]
    if not sizes:
        raise ArgumentError("batch_sizes must name at least one batch size")
    trees = {B: reveal(backend, K, batch_size=B, **options) for B in sizes}
    groups: dict[Any, list[int]] = {}
    for B, found in trees.items():
        key = (found.tree, found.name, found.fused, found.rounded_terms) if found.fixed else ("not fixed", B)
        groups.setdefault(key, []).append(B)
    return TreesByBatch(trees, list(groups.values()))
