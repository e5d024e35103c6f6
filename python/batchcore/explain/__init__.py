"""Say why: the accumulation order a library used (:func:`reveal`), as a summation tree (:mod:`.tree`)."""

from .reveal import RevealedTree, TreesByBatch, reveal, reveal_sweep

__all__ = ["RevealedTree", "TreesByBatch", "reveal", "reveal_sweep"]
