"""What a cell does where it runs (a worker process, a node of a Ray cluster, or this process): the outputs
of one (backend, batch size), or one timed round of it, and which node computed them.

Every function here is a plain module-level function of picklable arguments, so that any executor can
ship it: a ``concurrent.futures`` pool pickles it, Ray makes a task of it. A cell gets its backend as
settings (made anew here, once per process) and its payload (model and data) either as it is or as a
:class:`SharedPayload` that names it by digest and fetches it at most once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend, TimedBatch, from_settings
from ..info import kind_name, machine_identity, thread_environment
from ..model.opaque import Outputs

# Per process: the payloads and backends its cells used last, so that a grid of thousands of cells
# unpickles its model once per worker, not once per cell (a few models at a time: a grid of many models
# holds only the latest ones).
_PAYLOADS: OrderedDict[str, Any] = OrderedDict()
_BACKENDS: dict[str, Backend] = {}
_KEEP_PAYLOADS = 4
_IDENTITY: dict[str, Any] = {}
_WARM: set[tuple[str, str, int]] = set()


class SharedPayload:
    """A payload put once into a shared store (Ray's object store), named by its digest: ``fetch`` gets the
    object at most once per process. The reference travels inside this object, so Ray does not resolve
    it for every task."""

    def __init__(self, digest: str, ref: Any):
        self.digest, self.ref = digest, ref

    def fetch(self) -> Any:
        import ray  # only ever made by the Ray executor, so Ray is installed wherever this runs

        return ray.get(self.ref)


def _payload(box: Any) -> Any:
    if not isinstance(box, SharedPayload):
        return box
    found = _PAYLOADS.get(box.digest)
    if found is None:
        found = _PAYLOADS[box.digest] = box.fetch()
        while len(_PAYLOADS) > _KEEP_PAYLOADS:
            _PAYLOADS.popitem(last=False)
    _PAYLOADS.move_to_end(box.digest)
    return found


def _settings_key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def _backend(settings: dict[str, Any]) -> Backend:
    key = _settings_key(settings)
    if key not in _BACKENDS:
        _BACKENDS[key] = from_settings(settings)
    return _BACKENDS[key]


def node_id() -> str:
    """The node this process runs on: Ray's node id inside a Ray worker (Ray is never imported here for
    it), else the host name (a process pool's workers are on this host)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.get_runtime_context().get_node_id())
    return node_identity()["host"]


def node_identity() -> dict[str, Any]:
    """:func:`batchcore.info.machine_identity` of this process's machine, read once per process."""
    if not _IDENTITY:
        _IDENTITY.update(machine_identity())
    return dict(_IDENTITY)


def identify() -> dict[str, Any]:
    """This node's id, its identity, and the process that answered: the task an executor sends every node."""
    return {"node": node_id(), "identity": node_identity(), "pid": os.getpid()}


@dataclass
class CellResult:
    """What a cell sends back: its ``value`` (outputs, row digests, or a timed batch), the node that computed
    it, that node's machine kind (its digest, and in words: :func:`batchcore.info.kind_name`), and the
    threading variables of the process that ran it (:data:`batchcore.info.THREAD_ENV`)."""

    value: Any
    node: str
    kind: str
    machine: str
    thread_environment: dict[str, str | None]


def _result(value: Any) -> CellResult:
    identity = node_identity()
    return CellResult(value, node_id(), identity["kind"], kind_name(identity), thread_environment())


def row_digests(y: np.ndarray | Outputs) -> list[str]:
    """SHA-256 of each row's output bits (every output's row, in order, for a module's several outputs):
    rows compared across machines without shipping the outputs."""
    parts = [np.ascontiguousarray(o.values) for o in y] if isinstance(y, list) else [np.ascontiguousarray(y)]
    digests = []
    for i in range(len(parts[0])):
        h = hashlib.sha256()
        for part in parts:
            h.update(part[i].tobytes())
        digests.append(h.hexdigest())
    return digests


def outputs_cell(box: Any, settings: dict[str, Any], batch_size: int, ship: bool = True,
                 digests: bool = False) -> CellResult:
    """The outputs of every row of the payload's data in batches of ``batch_size`` on the backend the
    settings make: the outputs; with ``digests``, each row's SHA-256 instead, or with ``ship`` too, both (a pair)."""
    y = _payload(box).outputs(_backend(settings), batch_size)
    if not digests:
        return _result(y)
    return _result((y, row_digests(y)) if ship else row_digests(y))


def timed_cell(box: Any, settings: dict[str, Any], batch_size: int, timer: Any, memory: bool) -> CellResult:
    """One timed round: a batch of the first ``batch_size`` rows timed under ``timer`` (with its memory
    measured when ``memory``)."""
    payload, backend = _payload(box), _backend(settings)
    first = (payload.digest, _settings_key(settings), batch_size)
    if first not in _WARM:  # a worker that never ran this pass (its library's lazy set-up): once, untimed
        payload.warm(backend, batch_size)
        _WARM.add(first)
    measured: TimedBatch = payload.measure(backend, batch_size, timer, memory)
    return _result(measured)
