"""What a torch forward pass costs in host memory, measured the only honest way available: in a
process of its own, as the growth of its peak resident set over its first forward pass.

PyTorch on the CPU keeps no byte counter of its own (its allocator is the C library's), so batchcore
reads the kernel's. The parent saves the model's layers to a temporary ``.npz`` file (on disk, in
``tempfile.gettempdir()``: never in shared memory, and the user's tensors are never pickled or moved)
and asks a server, ``python -m batchcore.backends.pytorch_memory_server``, started once per process: batchcore's
own module, so the user's ``__main__`` is never imported again (a script without an ``if __name__ ==
"__main__":`` guard, ``python - < file``, ``python -c`` and notebooks all work). The server has imported
torch and run nothing; for each request it forks a process that builds an equivalent ``nn.Sequential``
(the same layer types and parameters, so the same allocations), resets its peak RSS to the current RSS
(``/proc/self/clear_refs``), runs one forward pass of B zero rows and reports ``VmHWM - VmRSS before``.

What is counted: every page the pass touched for the first time (activations, the output, the BLAS
library's packing buffers, and on the first pass torch's thread pool stacks). What is not: memory already
resident before the pass (weights, input, the interpreter), and pages the C library kept from earlier
frees (there are none: no pass ran in that process or in the server it was forked from). Resolution: a
page (4 KiB); Linux only.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from ..errors import ArgumentError, BatchcoreError
from ..frontends.torch.capture import quiet_export
from ..model.chain import Layer, Model

METHOD = ("peak RSS growth over the first forward pass in a process of its own (weights and input already "
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
    peak resident set of a process of its own (see the module's docstring for what that includes)."""
    if not supported():
        raise ArgumentError("measuring torch's CPU memory needs Linux's /proc/self/clear_refs")
    with tempfile.TemporaryDirectory(prefix="batchcore-rss-") as tmp:
        path = os.path.join(tmp, "model.npz")
        save_layers(model, path)
        return _ask_server(path, str(int(batch_size)), threads, timeout_s, batch_size)


def _flat_outputs(module: Any) -> Any:
    """A torch module that returns ``module``'s outputs as a flat tuple of tensors: its capture then
    names no output type of the user's library (a Hugging Face ``ModelOutput``, known to torch's pytree
    only where that library is imported), so the server loads it without importing that library. What is
    not a tensor (a Hugging Face cache object, which export cannot return) is dropped, as the sweep leaves
    it out of its comparisons; the tensors it held were made by the pass all the same."""
    import torch
    from torch.utils import _pytree

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *inputs: Any) -> tuple[Any, ...]:
            return tuple(t for t in _pytree.tree_leaves(self.inner(*inputs)) if isinstance(t, torch.Tensor))

    return FlatOutputs()


def module_rss_growth_bytes(module: Any, inputs: tuple[Any, ...], threads: int, timeout_s: float = 120.0) -> int:
    """Bytes by which one forward pass of a user's module on a batch shaped like ``inputs`` (zeros of
    their shapes and dtypes) grows the peak resident set of a process of its own. The module travels as its
    ``torch.export`` capture at these very shapes (saved to a temporary ``.pt2``: aten operations and
    parameters, so the child imports none of the user's code); ArgumentError when export cannot capture
    it (the message says why)."""
    import torch

    if not supported():
        raise ArgumentError("measuring torch's CPU memory needs Linux's /proc/self/clear_refs")
    exported = quiet_export(torch, _flat_outputs(module), tuple(inputs), type(module).__name__)
    spec = [{"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for t in inputs]
    with tempfile.TemporaryDirectory(prefix="batchcore-rss-") as tmp:
        path = os.path.join(tmp, "module.pt2")
        torch.export.save(exported, path)
        return _ask_server(path, json.dumps(spec), threads, timeout_s, int(inputs[0].shape[0]))


class _Server:
    """The measuring server (:mod:`batchcore.backends.pytorch_memory_server`): one process, started on the first
    request and kept while this process lives (its standard input closes when this process ends, and it
    exits). A request that fails to answer in time kills it and its forked process; the next starts anew."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.owner = 0  # the pid that started it: a forked copy of this process must start its own
        self.lock = threading.Lock()
        self.stderr: Any = None  # a temporary file: what the server said, read when it dies

    def _start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None or self.owner != os.getpid():
            self.stop()  # a server that died between requests, or this process's parent's: its pipes closed
            self.stderr = tempfile.TemporaryFile()
            # numpy's BLAS starts a thread pool at import unless told not to; the server forks, and a fork is
            # simplest from a process of one thread (OpenBLAS also parks its pool around a fork)
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
            self.proc = subprocess.Popen([sys.executable, "-m", "batchcore.backends.pytorch_memory_server"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                         env=env, start_new_session=True)
            self.owner = os.getpid()
        return self.proc

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and self.owner == os.getpid() and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the server and a forked process it may be waiting for
            except ProcessLookupError:
                pass
            proc.wait()
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout, self.stderr):
                if pipe is not None:
                    pipe.close()

    def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The server's answer to ``request`` (a dict), within ``timeout_s`` seconds (its start included)."""
        with self.lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = _read_line(proc.stdout.fileno(), time.monotonic() + timeout_s)
            except BrokenPipeError:
                line = b""
            except TimeoutError:
                self.stop()
                raise BatchcoreError(f"the memory-measuring server did not answer within {timeout_s} s") from None
            if not line:  # the server died: say what it last wrote
                self.stderr.seek(0)
                said = self.stderr.read().decode(errors="replace").strip().splitlines()
                self.stop()
                return {"error": said[-1] if said else "the memory-measuring server exited"}
            try:
                return dict(json.loads(line))
            except json.JSONDecodeError:
                self.stop()
                return {"error": f"the memory-measuring server wrote {line[:200]!r}"}


def _read_line(fd: int, deadline: float) -> bytes:
    """One line from ``fd`` (without its newline; b"" at end of file); TimeoutError past ``deadline``."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b""
        data += chunk
    return data[:-1]


_SERVER = _Server()
atexit.register(_SERVER.stop)


def _ask_server(path: str, batch: str, threads: int, timeout_s: float, batch_size: int) -> int:
    """Asks the server about a saved model (``.npz`` with a batch size, or ``.pt2`` with its inputs' spec)."""
    answer = _SERVER.ask({"path": path, "batch": batch, "threads": int(threads)}, timeout_s)
    if "growth_bytes" not in answer:
        printed = f"; the measuring process printed: {answer['printed']}" if answer.get("printed") else ""
        raise BatchcoreError(f"measuring torch's CPU memory at B={batch_size} failed: {answer.get('error')}{printed}")
    return int(answer["growth_bytes"])
