"""Summation trees: how one dot product's K products are combined (issue "say why": ``bc.reveal``).

A tree is nested tuples: a leaf is the index k of a product a_k b_k, an inner node the tuple of its children
(two for an ordinary addition, more for a fused multi-term add). Children are kept in the order of their
smallest leaf: the masking method cannot tell a + b from b + a, and IEEE addition gives both the same bits.
The named orders of docs/orders.md are built here from their definitions, so a revealed tree can be named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

Tree = int | tuple["Tree", ...]


def hold_depth(K: int) -> None:
    """Raises Python's recursion limit (never lowers it) so that trees of K levels (a chain over K terms)
    can be built, compared, printed and recomputed: nested tuples that deep recurse in Python and in C."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * K + 1000))


def canonical(t: Tree) -> Tree:
    """Children ordered by their smallest leaf, single-child nodes dissolved (an empty lane adds nothing)."""
    return _canonical(t)[0]


def _canonical(t: Tree) -> tuple[Tree, int]:
    """The canonical tree and its smallest leaf, in one pass."""
    if isinstance(t, int):
        return t, t
    kids = sorted((_canonical(c) for c in t), key=lambda kid: kid[1])
    if len(kids) == 1:
        return kids[0]
    return tuple(k for k, _ in kids), kids[0][1]


def leaves(t: Tree) -> list[int]:
    return [t] if isinstance(t, int) else [k for c in t for k in leaves(c)]


# -- the named orders of docs/orders.md, from their definitions -----------------------------------------------

def chain(items: list[Tree]) -> Tree:
    """items added left to right: (((i0, i1), i2), ...)."""
    t = items[0]
    for x in items[1:]:
        t = (t, x)
    return t


def seq_tree(ks: list[int]) -> Tree:
    return chain(list(ks))


def chunk_tree(K: int, C: int) -> Tree:
    return chain([seq_tree(list(range(s, min(s + C, K)))) for s in range(0, K, C)])


def lanes_tree(K: int, W: int) -> Tree:
    lanes: list[Tree | None] = [seq_tree(list(range(lane, K, W))) if lane < K else None for lane in range(W)]
    h = W // 2
    while h >= 1:
        for lane in range(h):
            a, b = lanes[lane], lanes[lane + h]
            lanes[lane] = a if b is None else (b if a is None else (a, b))
        h //= 2
    assert lanes[0] is not None
    return lanes[0]


def pairwise_tree(lo: int, hi: int) -> Tree:
    if hi - lo == 1:
        return lo
    m = lo + (hi - lo) // 2
    return (pairwise_tree(lo, m), pairwise_tree(m, hi))


def named_trees(K: int) -> dict[str, Tree]:
    """Every named fixed-tree order at K (seq and seq-nofma share their tree; fma tells them apart)."""
    hold_depth(K)
    trees: dict[str, Tree] = {"seq": seq_tree(list(range(K))), "pairwise": pairwise_tree(0, K)}
    for W in (2, 4, 8, 16, 32, 64, 128, 256):
        trees[f"lanes:{W}"] = lanes_tree(K, W)
    for S in (2, 3, 4, 8, 16):
        trees[f"splitk:{S}"] = chunk_tree(K, -(-K // S))
    for C in (8, 16, 32, 64, 128, 256, 512, 1024):
        if C < K:
            trees[f"chunk:{C}"] = chunk_tree(K, C)
    return {name: canonical(t) for name, t in trees.items()}


# -- describing a tree that has no name -------------------------------------------------------------------

def _is_chain(t: Tree) -> bool:
    """A leaf, or a binary node adding one term to a chain (s = s + p_k, left to right)."""
    return isinstance(t, int) or (len(t) == 2 and isinstance(t[1], int) and _is_chain(t[0]))


def _chain_terms(t: Tree) -> list[int]:
    """A chain's terms in the order they are added."""
    terms: list[int] = []
    while not isinstance(t, int):
        last = t[1]
        assert isinstance(last, int)  # a chain adds one term at each step
        terms.append(last)
        t = t[0]
    return [t] + terms[::-1]


def _lanes(t: Tree) -> list[Tree]:
    """The maximal chains of the tree (its lanes), left to right."""
    if isinstance(t, int) or _is_chain(t):
        return [t]
    return [lane for c in t for lane in _lanes(c)]


def _skeleton(t: Tree) -> Any:
    """The tree with each lane replaced by its first term: how the lanes are joined."""
    if isinstance(t, int) or _is_chain(t):
        return _chain_terms(t)[0]
    return tuple(_skeleton(c) for c in t)


def _terms_text(terms: list[int]) -> str:
    steps = {b - a for a, b in zip(terms, terms[1:], strict=False)}
    if len(steps) == 1:
        return f"stride {steps.pop()}"
    shown = ", ".join(map(str, terms[:6]))
    return f"terms {shown}{', ...' if len(terms) > 6 else ''}"


def describe(t: Tree, K: int) -> str:
    """A short description: its lanes (the maximal chains: how many, how long, their strides) and how they
    are joined (the tree with each lane named by its first term), or a chain's order."""
    if isinstance(t, int):
        return "a single term"
    lanes = _lanes(t)
    fused = max(len(n) for n in _nodes(t))
    extra = f"; fused adds of up to {fused} terms" if fused > 2 else ""
    if len(lanes) == 1:
        return f"one chain over {K} terms, {_terms_text(_chain_terms(t))}{extra}"
    sizes = sorted({len(_chain_terms(lane)) for lane in lanes})
    size_text = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    kinds = sorted({_terms_text(_chain_terms(lane)) for lane in lanes if len(_chain_terms(lane)) > 2})
    how = kinds[0] if len(kinds) == 1 else ("; ".join(kinds[:2]) + ("; ..." if len(kinds) > 2 else "")) if kinds else ""
    return (f"{len(lanes)} lanes (chains) of {size_text} terms{', ' + how if how else ''}; joined as "
            f"{draw(_skeleton(t), 60)}{extra}")


def _nodes(t: Tree) -> list[tuple[Tree, ...]]:
    return [] if isinstance(t, int) else [t] + [n for c in t for n in _nodes(c)]


# -- recomputing a tree in float32, to check it against a library's bits ----------------------------------

def _round_to_float32(exact_hi: np.ndarray, exact_lo: np.ndarray) -> np.ndarray:
    """float32(hi + lo) rounded once: hi + lo exact as a float64 pair; round to odd in float64 first (a
    53-bit round to odd then a 24-bit round to nearest is the correct 24-bit rounding)."""
    hi = exact_hi.copy()
    fix = (exact_lo != 0) & ((hi.view(np.int64) & 1) == 0)  # inexact and even: its odd neighbour toward the value
    hi[fix] = np.nextafter(hi[fix], np.where(exact_lo[fix] > 0, np.inf, -np.inf))
    return hi.astype(np.float32)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def evaluate(t: Tree, a: np.ndarray, b: np.ndarray, fused: bool | Collection[int]) -> np.ndarray:
    """The tree's float32 value per row of products a[:, k] * b[:, k] (float32 arrays, rows x K).
    ``fused``: True: a leaf joined to a partial sum enters it by one fma (seq's), the higher-indexed of two
    joined leaves into the lower's rounded product; False: every product is rounded before it is added
    (seq-nofma's, pairwise's); a collection: the terms that enter by fma (where two joined leaves are both
    in it, the higher index does), the others rounded first (a library whose main loop fuses and whose tail
    does not). Multi-term nodes: the exact sum of their children (a fused leaf's product exact) rounded once."""
    exact = a.astype(np.float64) * b.astype(np.float64)  # exact: 24 + 24 bits
    rounded = exact.astype(np.float32)
    by_fma: Callable[[int], bool]
    if isinstance(fused, bool):
        by_fma = (lambda k: True) if fused else (lambda k: False)
    else:
        terms = frozenset(fused)
        by_fma = terms.__contains__

    def value(n: Tree) -> np.ndarray:
        if isinstance(n, int):
            return rounded[:, n]
        if len(n) > 2:
            total = np.zeros(len(a), np.float64)
            err = np.zeros(len(a), np.float64)
            for c in n:
                v = (exact if by_fma(c) else rounded)[:, c].astype(np.float64) if isinstance(c, int) else \
                    value(c).astype(np.float64)
                total, e = _two_sum(total, v)
                err = err + e
            hi, lo = _two_sum(total, err)
            return _round_to_float32(hi, lo)
        left, right = n
        # the leaf that enters the other child by one fma, if any; of two leaves, the higher index first
        leaf = max((c for c in n if isinstance(c, int) and by_fma(c)), default=None)
        if leaf is not None:
            other = right if left == leaf else left
            hi, lo = _two_sum(exact[:, leaf], value(other).astype(np.float64))
            return _round_to_float32(hi, lo)
        return (value(left) + value(right)).astype(np.float32)

    return value(t)


def joins(t: Tree) -> dict[int, int]:
    """For each leaf, a leaf of another child of its node (the partial sum the leaf is added to holds it):
    the last leaf of the first other child (a chain's last term: found in a step, where its first would take
    the chain's length). A single-leaf tree has none."""

    def last_leaf(n: Tree) -> int:
        while not isinstance(n, int):
            n = n[-1]
        return n

    partner: dict[int, int] = {}
    stack = [t]
    while stack:
        n = stack.pop()
        if isinstance(n, int):
            continue
        for i, c in enumerate(n):
            if isinstance(c, int):
                partner[c] = last_leaf(n[1] if i == 0 else n[0])
            else:
                stack.append(c)
    return partner


def sketch(t: Tree, depth: int = 4) -> Any:
    """The tree's top ``depth`` levels as JSON-ready nested lists, each chain and each deeper subtree folded
    into ``{"kind": "chain" | "tree" | "term", "n": its terms}``: what the report draws small."""
    if isinstance(t, int):
        return {"kind": "term", "n": 1}
    if _is_chain(t) or depth == 0:
        return {"kind": "chain" if _is_chain(t) else "tree", "n": len(leaves(t))}
    return [sketch(c, depth - 1) for c in t]


def draw(t: Tree, width: int = 72) -> str:
    """The tree as nested brackets, cut to ``width`` characters."""
    text = str(t).replace(" ", "")
    return text if len(text) <= width else text[: width - 3] + "..."
