"""torch's CPU memory: the peak RSS growth of a pass that is the first in its process, measured in a
process forked from a server that has imported torch. Held against a fresh interpreter that runs the same
pass itself (written here, not batchcore's code), and the server's failure modes: a request past its
timeout, a request it cannot serve, its end with the process that started it."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import batchcore as bc
from batchcore.backends import pytorch_memory as rss
from batchcore.errors import BatchcoreError

pytestmark = [pytest.mark.skipif(not rss.supported(), reason="needs Linux's /proc/self/clear_refs")]

QUICK = bc.Timer(min_samples=3, min_time_s=0, warmup_s=0, timeout_s=1, target=0.5)

# The same request measured the way a fresh interpreter would: imports, the model loaded, the first pass
# (no server, no fork, no pages touched for it)
FRESH_PASS = """
import json, sys
from batchcore.backends.pytorch_memory_server import measure
print(json.dumps(measure(json.loads(sys.argv[1]))))
"""


def test_torch_cpu_memory_is_rss_growth_that_sees_the_activations():
    pytest.importorskip("torch")
    # At B rows the pass holds the linear's output and relu's (out of place), 2 x B x 4096 floats, at
    # once. Between B=16 and B=2048 that is 2 x 2032 x 4096 x 4 bytes = 63.5 MiB more; the BLAS and the
    # allocator may add a little, never remove it.
    model = bc.mlp([64, 4096, 64], seed=0)
    backend = bc.torch(threads=1)
    x_small = np.zeros((16, 64), np.float32)
    x_large = np.zeros((2048, 64), np.float32)
    small, large = backend.measure(model, x_small, QUICK), backend.measure(model, x_large, QUICK)
    assert small.memory == large.memory and "RSS" in large.memory
    activations = 2 * (2048 - 16) * 4096 * 4
    assert 0.9 * activations < large.peak_bytes - small.peak_bytes < 1.5 * activations
    off = bc.torch(threads=1, measure_memory=False).measure(model, x_small, QUICK)
    assert off.peak_bytes is None and "not measured" in off.memory


@pytest.mark.parametrize("B", [16, 2048])
def test_the_server_measures_what_a_fresh_interpreter_measures(B, tmp_path):
    """Without the re-touched code pages the forked pass counts ~1 MiB of the imports' code as its own."""
    pytest.importorskip("torch")
    path = str(tmp_path / "model.npz")
    rss.save_layers(bc.mlp([64, 4096, 64], seed=0), path)
    request = {"path": path, "batch": str(B), "threads": 1}
    fresh = subprocess.run([sys.executable, "-c", FRESH_PASS, json.dumps(request)], capture_output=True, text=True,
                           check=True, timeout=300).stdout
    fresh_bytes = json.loads(fresh)["growth_bytes"]
    served = rss._ask_server(path, str(B), 1, 300, B)
    assert abs(served - fresh_bytes) <= (1 << 19) + 0.02 * fresh_bytes, (B, served / 2**20, fresh_bytes / 2**20)


def test_the_server_ends_with_its_parent():
    """The parent's end, even by SIGKILL, closes the server's standard input, and it exits."""
    pytest.importorskip("torch")
    code = textwrap.dedent("""
        import os, batchcore as bc
        from batchcore.backends import pytorch_memory as rss
        rss.rss_growth_bytes(bc.mlp([8, 4], seed=0), 2, threads=1)
        pid = rss._SERVER.proc.pid
        print(pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    pid = int(done.stdout)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the server outlived the process that started it"


def alive(pid):
    """Whether process ``pid`` runs (an exited one waiting for init to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_late_answer_kills_the_server_and_a_bad_request_is_named():
    pytest.importorskip("torch")
    rss._SERVER.stop()
    with pytest.raises(BatchcoreError, match="did not answer within 0.01 s"):
        rss._SERVER.ask({"path": "none.npz", "batch": "2", "threads": 1}, timeout_s=0.01)  # still importing torch
    assert rss._SERVER.proc is None
    with pytest.raises(BatchcoreError, match=r"at B=2 failed: .*nowhere\.npz"):
        rss._ask_server("nowhere.npz", "2", 1, 300, 2)
    server = rss._SERVER.proc
    assert rss.rss_growth_bytes(bc.mlp([8, 4], seed=0), 2, threads=1) > 0
    assert rss._SERVER.proc is server and server.poll() is None  # the failed request left it serving


def test_a_server_that_died_between_requests_is_replaced_and_its_pipes_closed():
    pytest.importorskip("torch")
    import signal

    model = bc.mlp([8, 4], seed=0)
    assert rss.rss_growth_bytes(model, 2, threads=1) > 0
    dead = rss._SERVER.proc
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait()
    assert rss.rss_growth_bytes(model, 2, threads=1) > 0
    assert rss._SERVER.proc is not dead and dead.stdin.closed and dead.stdout.closed


def test_a_module_whose_output_type_only_its_library_knows_is_measured():
    """An output class registered with torch's pytree in this process only (as a Hugging Face model's
    ModelOutput is where transformers is imported): the server, which never imports it, still measures."""
    torch = pytest.importorskip("torch")
    from torch.utils import _pytree

    class Output:
        def __init__(self, logits):
            self.logits = logits

    _pytree.register_pytree_node(Output, lambda o: ([o.logits], None), lambda leaves, _: Output(leaves[0]),
                                 serialized_type_name=f"{__name__}.Output")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 4)

        def forward(self, x):
            return Output(self.linear(x))

    assert rss.module_rss_growth_bytes(Net().eval(), (torch.zeros(2, 8),), threads=1) > 0
