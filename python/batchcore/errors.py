"""batchcore's exceptions: one base class, one subclass per kind of problem.

The classes are created by the compiled core (so C++ errors arrive as these very classes) and
re-exported here. ``MissingDependencyError`` is raised by the Python layer when an optional package
(torch, cupy) that a backend needs is not installed.
"""

from ._core import (  # noqa: F401  (re-exported)
    ArgumentError,
    BatchcoreError,
    DeviceUnavailableError,
    DTypeError,
    NonFiniteError,
    OrderError,
    OutOfMemoryError,
    ShapeError,
    UnsupportedLayerError,
)


class MissingDependencyError(BatchcoreError, ImportError):
    """An optional dependency that this feature needs is not installed."""


class ModuleError(BatchcoreError):
    """A user's module (run as it is by a torch backend) raised an exception: the message names the module,
    the shapes and dtypes of the batch it was given and what it raised (chained as ``__cause__``)."""


class ResultFileError(BatchcoreError):
    """A result file (JSON, JSON lines, CSV) that cannot be read or written: missing, a directory, not
    batchcore's format, or damaged beyond a torn last line. The message names the path and the problem."""


__all__ = [
    "ArgumentError",
    "BatchcoreError",
    "DeviceUnavailableError",
    "DTypeError",
    "MissingDependencyError",
    "ModuleError",
    "NonFiniteError",
    "OrderError",
    "OutOfMemoryError",
    "ResultFileError",
    "ShapeError",
    "UnsupportedLayerError",
]
