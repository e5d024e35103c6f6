"""``python -m batchcore._rss_child MODEL.npz B THREADS``: one torch forward pass of B zero rows in this
fresh process; prints ``{"growth_bytes": N}`` (peak RSS growth over the pass) or ``{"error": "..."}``.
Run by :func:`batchcore.rss.rss_growth_bytes`; see :mod:`batchcore.rss` for what is counted."""

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
        path, batch_size, threads = argv[0], int(argv[1]), int(argv[2])
        import numpy as np
        import torch

        from batchcore.rss import load_layers
        from batchcore.torch_models import build_module

        torch.set_num_threads(threads)
        model = load_layers(path)
        module = build_module(model)
        x = torch.from_numpy(np.zeros((batch_size, model.input_width), np.float32))
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set restarts at the current one
        before = _status_kib("VmRSS")
        with torch.no_grad():
            module(x)
        print(json.dumps({"growth_bytes": 1024 * (_status_kib("VmHWM") - before)}))
        return 0
    except BaseException as e:  # the parent reads the reason; nothing may hang
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
