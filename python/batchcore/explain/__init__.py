"""Say why: the accumulation order a library used (:func:`reveal`), as a summation tree (:mod:`.tree`)."""

from .reveal import RevealedTree, reveal

__all__ = ["RevealedTree", "reveal"]
