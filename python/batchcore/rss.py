"""What a torch forward pass costs in host memory, measured the only honest way available: in a fresh
process, as the growth of its peak resident set over one pass.

PyTorch on the CPU keeps no byte counter of its own (its allocator is the C library's), so batchcore
reads the kernel's: the child builds the module and the input, resets its peak RSS to the current RSS
(``/proc/self/clear_refs``), runs one forward pass of B rows, and reports ``VmHWM - VmRSS before``.
What is counted: every page the pass touched for the first time (activations, the output, the BLAS
library's packing buffers, and on the first pass torch's thread pool stacks). What is not: memory
already resident before the pass (weights, input, the interpreter), and pages the C library had kept
from earlier frees (there are none: the process is fresh). Resolution: a page (4 KiB); Linux only.
"""

from __future__ import annotations

import multiprocessing
import os

from .errors import ArgumentError, BatchcoreError

METHOD = ("peak RSS growth over the first forward pass in a fresh process (weights and input already "
          "resident; includes torch's one-time thread pools and BLAS buffers; 4 KiB pages)")


def supported() -> bool:
    """Whether this OS lets a process reset and read its peak resident set (Linux)."""
    return os.path.exists("/proc/self/clear_refs") and os.path.exists("/proc/self/status")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BatchcoreError(f"/proc/self/status has no {field}")


def _child(model, batch_size: int, threads: int, conn) -> None:
    try:
        import numpy as np
        import torch

        torch.set_num_threads(threads)
        module = model.torch_module("cpu").eval()
        x = torch.from_numpy(np.zeros((batch_size, model.input_width), np.float32))
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set restarts at the current one
        before = _status_kib("VmRSS")
        with torch.no_grad():
            module(x)
        conn.send(("ok", 1024 * (_status_kib("VmHWM") - before)))
    except BaseException as e:  # the parent raises it; nothing may hang
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def rss_growth_bytes(model, batch_size: int, threads: int, timeout_s: float = 120.0) -> int:
    """Bytes by which one torch forward pass of ``batch_size`` rows (on ``threads`` threads) grows the
    peak resident set of a fresh process (see the module's docstring for what that includes)."""
    if not supported():
        raise ArgumentError("measuring torch's CPU memory needs Linux's /proc/self/clear_refs")
    ctx = multiprocessing.get_context("spawn")  # never fork a process whose thread pools are running
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(model, batch_size, threads, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise BatchcoreError(f"the memory-measuring child did not answer within {timeout_s} s")
        status, value = parent.recv()
    except EOFError:
        raise BatchcoreError(f"the memory-measuring child died (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent.close()
    if status != "ok":
        raise BatchcoreError(f"measuring torch's CPU memory at B={batch_size} failed in the child: {value}")
    return value
