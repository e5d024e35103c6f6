"""The five questions, each answered by a study on real data: its verdict, its tables, its figures.

``bc.studies.accuracy(module, data, labels, ...)``: does a larger batch change predictions and accuracy?
Each study returns a :class:`Study` (print it, ``to_json`` it, ``batchcore report`` it); ``batchcore study
NAME`` runs it on scikit-learn's bundled digits (:mod:`batchcore.studies.digits`).
"""

from . import digits
from .accuracy import accuracy
from .deployment import deployment
from .evaluation import evaluation
from .figures import figures_of
from .orders import orders
from .performance import performance
from .record import Study, Table
from .switches import switches, switches_settings
from .training import training

__all__ = ["Study", "Table", "accuracy", "deployment", "digits", "evaluation", "figures_of", "orders", "performance",
           "switches", "switches_settings", "training"]
