"""``python -m batchcore.backends.pytorch_memory_server``: the server that measures torch's CPU memory.

It imports torch once, runs nothing, and then answers requests, one JSON line each on standard input:
``{"path": MODEL.npz, "batch": B, "threads": T}`` (a chain's layers) or ``{"path": MODULE.pt2, "batch":
INPUTS_JSON, "threads": T}`` (a user's module as its torch.export capture, inputs as a list of {shape,
dtype}). For each it forks a process that loads the model, runs one torch forward pass of zero inputs and
reports the growth of its peak resident set over the pass; the server prints ``{"growth_bytes": N}`` or
``{"error": "..."}`` as one line on standard output. It exits when its standard input closes (the parent
ended). Started by :mod:`batchcore.backends.pytorch_memory`; see that module for what is counted.

Why a fork: each pass must be the first in its process (torch's thread pools and buffers are made by it,
and no freed pages of an earlier pass are reused), and a fresh interpreter per point spent seconds
importing torch. The forked process starts from the server's pages, resident before the pass as a fresh
process's imports are, with one repair: a fork does not copy the page tables of file mappings, so the
code and read-only data the imports had touched would fault in again during the pass and be counted as
its growth. The server lists those pages once (``/proc/self/pagemap``) and the forked process touches
them before the pass, as a fresh process would have had them.
"""

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


# What a failed measuring process printed is sent back to the user, up to this many characters (its end).
PRINTED_CHARS = 4000

# Pages read from /proc/self/pagemap at a time: buffers under the C library's mmap threshold (128 KiB),
# so that listing the pages leaves its allocator as the imports left it (a freed larger block would raise it).
CHUNK_PAGES = 1024


def resident_file_pages() -> list[tuple[int, int]]:
    """(address, length) of each run of pages of a readable file mapping (code, read-only data) that is
    in this process's page tables."""
    import numpy as np

    page, runs = os.sysconf("SC_PAGE_SIZE"), []
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or not fields[5].startswith("/") or not fields[1].startswith("r"):
                continue  # anonymous memory (copied by the fork), [vdso], unreadable guard regions
            start, end = (int(a, 16) for a in fields[0].split("-"))
            for first in range(start, end, CHUNK_PAGES * page):
                pagemap.seek(first // page * 8)
                count = min(CHUNK_PAGES, (end - first) // page)
                present = (np.frombuffer(pagemap.read(count * 8), np.uint64) >> np.uint64(63)).astype(np.int8)
                edges = np.flatnonzero(np.diff(np.concatenate(([0], present, [0]))))
                runs += [(first + int(a) * page, int(b - a) * page) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return runs


def touch(runs: Sequence[tuple[int, int]]) -> None:
    """Reads one byte of every page of ``runs``: they enter this process's page tables (minor faults)."""
    import ctypes

    import numpy as np

    page = os.sysconf("SC_PAGE_SIZE")
    for address, length in runs:
        np.ctypeslib.as_array((ctypes.c_uint8 * length).from_address(address))[::page].sum()


def measure(request: dict[str, Any], resident: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
    """One forward pass of the requested model in this process: ``{"growth_bytes": N}`` or ``{"error": ...}``.
    ``resident``: pages to touch first (:func:`resident_file_pages` of the process this one was forked from)."""
    try:
        import numpy as np
        import torch

        path, batch = request["path"], request["batch"]
        torch.set_num_threads(int(request["threads"]))
        if path.endswith(".pt2"):
            module = torch.export.load(path).module()
            inputs = [torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"])) for s in json.loads(batch)]
        else:
            from ..frontends.torch.chain import build_module
            from .pytorch_memory import load_layers

            model = load_layers(path)
            module = build_module(model)
            inputs = [torch.from_numpy(np.zeros((int(batch), model.input_width), np.float32))]
        touch(resident)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set restarts at the current one
        before = _status_kib("VmRSS")
        with torch.no_grad():
            module(*inputs)
        return {"growth_bytes": 1024 * (_status_kib("VmHWM") - before)}
    except BaseException as e:  # the parent reads the reason; nothing may hang
        return {"error": f"{type(e).__name__}: {e}"}


def _answer(request: dict[str, Any], resident: list[tuple[int, int]]) -> dict[str, Any]:
    """``measure(request)`` in a forked process; the server itself never runs a pass."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the measuring process: its answer goes through the pipe; what it prints, into a file read
        os.close(read_end)  # back when it fails (its warnings are the reason more often than not)
        try:
            printed = tempfile.TemporaryFile()
            os.dup2(printed.fileno(), 1)
            os.dup2(printed.fileno(), 2)
            # Python's own streams too (a host may have replaced them with objects not on descriptors 1 and 2)
            sys.stdout = sys.stderr = open(os.dup(printed.fileno()), "w", buffering=1)  # noqa: SIM115
            found = measure(request, resident)
            if "error" in found:
                sys.stdout.flush()
                printed.seek(0)
                said = printed.read().decode(errors="replace").strip()
                if said:
                    found["printed"] = said[-PRINTED_CHARS:]
            answer = json.dumps(found).encode()
            while answer:
                answer = answer[os.write(write_end, answer):]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if chunks:
        return json.loads(b"".join(chunks))
    if os.WIFSIGNALED(status):
        return {"error": f"the measuring process was killed by signal {os.WTERMSIG(status)}"}
    return {"error": f"the measuring process exited with code {os.waitstatus_to_exitcode(status)} and no answer"}


def serve() -> int:
    import numpy  # noqa: F401  # imported once here, as the forked processes need them
    import torch  # noqa: F401

    from ..frontends.torch import chain  # noqa: F401
    from . import pytorch_memory  # noqa: F401

    resident, exports = resident_file_pages(), False
    for line in sys.stdin:
        try:
            request = json.loads(line)
            if str(request.get("path")).endswith(".pt2") and not exports:
                # Loading a torch.export capture first imports ~850 modules (sympy, torch._dynamo: seconds).
                # A fresh process would have them before its pass too: imported here once, for every fork.
                import torch._export.serde.serialize  # noqa: F401

                resident, exports = resident_file_pages(), True
            answer = _answer(request, resident)
        except Exception as e:  # a request it cannot read, a fork that failed: said, and the server goes on
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
