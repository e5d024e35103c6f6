"""Say why: the accumulation order a library used (:func:`reveal`), as a summation tree (:mod:`.tree`), and
the layer where a row's bits part between running alone and in a batch (:func:`trace`)."""

from .reveal import RevealedTree, TreesByBatch, reveal, reveal_sweep
from .trace import Trace, trace

__all__ = ["RevealedTree", "Trace", "TreesByBatch", "reveal", "reveal_sweep", "trace"]
