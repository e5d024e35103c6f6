"""``python -m batchcore.backends.pytorch_memory_child MODEL.npz B THREADS`` (or ``MODULE.pt2 INPUTS_JSON THREADS``: a user's
module as its torch.export capture, inputs as a list of {shape, dtype}): one torch forward pass of zero
inputs in this fresh process; prints ``{"growth_bytes": N}`` (peak RSS growth over the pass) or ``{"error": "..."}``.
Run by :func:`batchcore.backends.pytorch_memory.rss_growth_bytes`; see that module for what is counted."""

import json
import sys


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def main(argv: list[str]) -> int:
    try:
        path, batch, threads = argv[0], argv[1], int(argv[2])
        import numpy as np
        import torch

        torch.set_num_threads(threads)
        if path.endswith(".pt2"):
            module = torch.export.load(path).module()
            inputs = [torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"])) for s in json.loads(batch)]
        else:
            from ..frontends.torch.chain import build_module
            from .pytorch_memory import load_layers

            model = load_layers(path)
            module = build_module(model)
            inputs = [torch.from_numpy(np.zeros((int(batch), model.input_width), np.float32))]
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set restarts at the current one
        before = _status_kib("VmRSS")
        with torch.no_grad():
            module(*inputs)
        print(json.dumps({"growth_bytes": 1024 * (_status_kib("VmHWM") - before)}))
        return 0
    except BaseException as e:  # the parent reads the reason; nothing may hang
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
