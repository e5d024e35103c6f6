"""A JAX model run as it is (an :class:`~batchcore.model.opaque.OpaqueModel`): a function ``fn(params, x)`` and
its parameters (any pytree of arrays: a Flax ``params`` dict, an Equinox module's arrays, a plain dict), made
by :func:`jax_model`. Its inputs are numpy arrays (one ``x``; a list, passed as ``fn(params, *xs)``; a dict,
passed as ``fn(params, **xs)``), its outputs an array or any pytree of them, each compared in its own
format. jax is imported only when called.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ...errors import ArgumentError, DTypeError, MissingDependencyError
from ...model.array_inputs import ArrayInputs, ArrayModel, array_inputs, dtype_name
from ...model.opaque import FLOAT_FORMATS, Output, Outputs, as_output, flatten_outputs, format_of


def import_jax() -> Any:
    """The jax module, or MissingDependencyError saying how to install it."""
    try:
        import jax
    except ImportError as e:
        raise MissingDependencyError('JAX is not installed; install batchcore with its jax extra: pip install '
                                     '"batchcore[jax]" (jax with its CPU jaxlib)') from e
    return jax


class JaxModel(ArrayModel):
    """``fn(params, x)`` with its ``params``, run by the JAX backend (:func:`batchcore.jax`), jitted there.
    ``dtype``: the floating format the parameters share ("fp32", "fp16", "bf16"), None without floating
    parameters; parameters of several floating formats are refused (the inputs' format would be ambiguous)."""

    framework = "jax"

    def __init__(self, fn: Any, params: Any, name: str | None = None):
        jax = import_jax()
        if not callable(fn):
            raise ArgumentError(f"fn must be a function fn(params, x), got {fn!r}")
        self.fn, self.params = fn, params
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        leaves = jax.tree_util.tree_leaves(params)
        floating = {dtype_name(np.asarray(leaf)) for leaf in leaves if np.issubdtype(np.asarray(leaf).dtype, np.floating)
                    or dtype_name(np.asarray(leaf)) == "bfloat16"}
        if len(floating) > 1:
            raise DTypeError(f"{self.name}'s parameters mix floating dtypes {sorted(floating)}; batchcore compares a "
                             "model in one format")
        self.dtype = format_of(floating.pop()) if floating else None
        if self.dtype is not None and self.dtype not in FLOAT_FORMATS:
            raise DTypeError(f"{self.name}'s parameters are {self.dtype}; batchcore compares float32, float16 and "
                             "bfloat16 (JAX computes in float32 unless jax_enable_x64 is set)")
        self.parameter_count = int(sum(np.asarray(leaf).size for leaf in leaves))

    def describe(self) -> dict[str, Any]:
        jax = import_jax()
        return {"kind": "opaque module", "framework": "jax", "name": self.name,
                "function": getattr(self.fn, "__qualname__", type(self.fn).__name__), "dtype": self.dtype,
                "jax": jax.__version__, "parameters": self.parameter_count}

    def digest(self) -> str:
        """A hash of the function's name and every parameter (path, dtype, shape, bits)."""
        jax = import_jax()
        h = hashlib.sha256(getattr(self.fn, "__qualname__", type(self.fn).__name__).encode())
        for path, leaf in jax.tree_util.tree_leaves_with_path(self.params):
            a = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{jax.tree_util.keystr(path)}:{dtype_name(a)}:{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def inputs(self, data: Any) -> ArrayInputs:
        """The user's data checked (numpy arrays or JAX arrays, taken as numpy of the same dtype): finite
        floating inputs of the parameters' format (float32 without floating parameters), integer ones as given."""
        want = {"fp16": "float16", "bf16": "bfloat16"}.get(self.dtype or "", "float32")
        parts = len(data) if isinstance(data, (list, tuple, dict)) else 1
        expected = None if isinstance(data, dict) else [want] * parts
        return array_inputs(data, self.name, "JAX", expected)

    def call(self, fn: Any, inputs: ArrayInputs) -> Any:
        """``fn(params, ...)`` on ``inputs`` in their structure (one array, positional, or by keyword)."""
        if inputs.keys is not None:
            return fn(self.params, **dict(zip(inputs.keys, inputs.arrays, strict=True)))
        return fn(self.params, *inputs.arrays)


def outputs_of(result: Any, rows: int) -> Outputs:
    """What the function returned (a JAX array, or a pytree of them), each an Output in its own format."""
    jax = import_jax()

    def leaf(obj: Any, name: str) -> Output | None:
        if not isinstance(obj, (jax.Array, np.ndarray)):
            return None
        values = np.asarray(obj)
        dtype = dtype_name(values)
        return as_output(name, values.astype(np.float32) if dtype == "bfloat16" else values, dtype, rows)

    if not isinstance(result, (tuple, list, dict, jax.Array, np.ndarray)):  # a custom pytree (a dataclass)
        leaves = jax.tree_util.tree_leaves_with_path(result)
        result = {jax.tree_util.keystr(path): value for path, value in leaves}
    return flatten_outputs(result, rows, leaf, "JAX")
