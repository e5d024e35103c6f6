"""JAX's frontend: a function ``fn(params, x)`` and its parameters, wrapped as they are by :func:`jax_model`
(:mod:`.module`) for the JAX backend. JAX has no module object to read, so nothing is read into the native
core. jax is imported only when a model is made."""

from __future__ import annotations

from typing import Any

from .module import JaxModel, import_jax

__all__ = ["JaxModel", "import_jax", "jax_model"]


def jax_model(fn: Any, params: Any, name: str | None = None) -> JaxModel:
    """A JAX model for ``bc.sweep(..., backends=[bc.jax()])``: ``fn(params, x)`` (pure, jittable) and its
    ``params`` (a pytree of arrays: a Flax variables dict, an Equinox module's arrays, a plain dict). Data:
    one array (``fn(params, x)``), a list (``fn(params, *xs)``) or a dict (``fn(params, **xs)``). Needs the
    ``jax`` extra (MissingDependencyError without it)."""
    return JaxModel(fn, params, name)
