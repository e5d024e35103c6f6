"""What a torch forward pass costs in host memory, measured the only honest way available: in a fresh
process, as the growth of its peak resident set over one pass.

PyTorch on the CPU keeps no byte counter of its own (its allocator is the C library's), so batchcore
reads the kernel's. The parent saves the model's layers to a temporary ``.npz`` file (on disk, in
``tempfile.gettempdir()``: never in shared memory, and the user's tensors are never pickled or moved)
and runs ``python -m batchcore.backends.pytorch_memory_child`` on it: batchcore's own module, so the user's ``__main__``
is never imported again (a script without an ``if __name__ == "__main__":`` guard, ``python - < file``,
``python -c`` and notebooks all work). The child builds an equivalent ``nn.Sequential`` (the same layer
types and parameters, so the same allocations), resets its peak RSS to the current RSS
(``/proc/self/clear_refs``), runs one forward pass of B zero rows and prints ``VmHWM - VmRSS before``.

What is counted: every page the pass touched for the first time (activations, the output, the BLAS
library's packing buffers, and on the first pass torch's thread pool stacks). What is not: memory already
resident before the pass (weights, input, the interpreter), and pages the C library kept from earlier
frees (there are none: the process is fresh). Resolution: a page (4 KiB); Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

from ..errors import ArgumentError, BatchcoreError
from ..model.chain import Layer, Model

METHOD = ("peak RSS growth over the first forward pass in a fresh process (weights and input already "
          "resident; includes torch's one-time thread pools and BLAS buffers; 4 KiB pages)")
MODULE_METHOD = METHOD.replace("first forward pass", "first forward pass of the module's torch.export capture")


def supported() -> bool:
    """Whether this OS lets a process reset and read its peak resident set (Linux)."""
    return os.path.exists("/proc/self/clear_refs") and os.path.exists("/proc/self/status")


def save_layers(model: Model, path: str) -> None:
    """The model's layers as an ``.npz``: ``spec`` (JSON: kind, width, scalar parameters per layer) and
    each array parameter as ``<layer>.<name>``."""
    arrays, spec = {}, []
    for i, layer in enumerate(model.layers):
        scalars = {}
        for key, value in layer.params.items():
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{key}"] = value
            else:
                scalars[key] = value
        spec.append({"kind": layer.kind, "scalars": scalars})
    header = {"input_width": model.input_width, "layers": spec}
    arrays["spec"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle flag


def load_layers(path: str) -> Model:
    """The :class:`~batchcore.model.chain.Model` saved by :func:`save_layers`."""
    with np.load(path) as f:
        header = json.loads(f["spec"].tobytes())
        layers = []
        for i, entry in enumerate(header["layers"]):
            params = dict(entry["scalars"])
            params.update({k.split(".", 1)[1]: f[k] for k in f.files if k.startswith(f"{i}.")})
            layers.append(Layer(entry["kind"], params))
    return Model(layers, header["input_width"])


def rss_growth_bytes(model: Model, batch_size: int, threads: int, timeout_s: float = 120.0) -> int:
    """Bytes by which one torch forward pass of ``batch_size`` rows (on ``threads`` threads) grows the
    peak resident set of a fresh process (see the module's docstring for what that includes)."""
    if not supported():
        raise ArgumentError("measuring torch's CPU memory needs Linux's /proc/self/clear_refs")
    with tempfile.TemporaryDirectory(prefix="batchcore-rss-") as tmp:
        path = os.path.join(tmp, "model.npz")
        save_layers(model, path)
        return _ask_child(path, str(int(batch_size)), threads, timeout_s, batch_size)


def module_rss_growth_bytes(module: Any, inputs: tuple[Any, ...], threads: int, timeout_s: float = 120.0) -> int:
    """Bytes by which one forward pass of a user's module on a batch shaped like ``inputs`` (zeros of
    their shapes and dtypes) grows the peak resident set of a fresh process. The module travels as its
    ``torch.export`` capture at these very shapes (saved to a temporary ``.pt2``: aten operations and
    parameters, so the child imports none of the user's code); ArgumentError when export cannot capture
    it (the message says why)."""
    import torch

    if not supported():
        raise ArgumentError("measuring torch's CPU memory needs Linux's /proc/self/clear_refs")
    try:
        exported = torch.export.export(module, tuple(inputs))
    except Exception as e:  # torch raises many kinds here; the reason is what matters
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ArgumentError(f"torch.export could not capture {type(module).__name__} ({type(e).__name__}: {first})") from e
    spec = [{"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for t in inputs]
    with tempfile.TemporaryDirectory(prefix="batchcore-rss-") as tmp:
        path = os.path.join(tmp, "module.pt2")
        torch.export.save(exported, path)
        return _ask_child(path, json.dumps(spec), threads, timeout_s, int(inputs[0].shape[0]))


def _ask_child(path: str, batch: str, threads: int, timeout_s: float, batch_size: int) -> int:
    """Runs the child on a saved model (``.npz`` with a batch size, or ``.pt2`` with its inputs' spec)."""
    cmd = [sys.executable, "-m", "batchcore.backends.pytorch_memory_child", path, batch, str(int(threads))]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BatchcoreError(f"the memory-measuring child did not answer within {timeout_s} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if done.returncode != 0 or "growth_bytes" not in answer:
        why = answer.get("error") or (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise BatchcoreError(f"measuring torch's CPU memory at B={batch_size} failed in the child: {why}")
    return int(answer["growth_bytes"])
