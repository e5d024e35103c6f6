"""kill -9 in the middle of a sweep loses and duplicates nothing: a rerun of the same sweep keeps every
point already written (bit for bit the same record) and measures only the rest."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

SWEEP = textwrap.dedent("""
    import sys
    import batchcore as bc
    timer = bc.Timer(min_samples=3, min_time_s=0.05, warmup_s=0, timeout_s=1, target=0.5)
    bc.sweep(bc.mlp([64, 32, 8], seed=0), [1, 2, 3, 4, 5, 6, 7, 8], [bc.native(), bc.numpy()], timer=timer,
             ceilings=False, out=sys.argv[1])
""")


def point_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        complete = f.read().split(b"\n")[:-1]  # the piece after the last newline is a torn write
    return [line for line in complete if b'"type": "point"' in line]


def test_kill_minus_9_mid_sweep_loses_and_duplicates_nothing(tmp_path):
    script, log = tmp_path / "sweep.py", str(tmp_path / "log.jsonl")
    script.write_text(SWEEP)
    kept = []
    for kill_after in (1, 5, 9):  # points present when the sweep is killed
        proc = subprocess.Popen([sys.executable, str(script), log], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(point_lines(log)) < kill_after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        # the kill must land mid-sweep: a sweep that had already finished would pass everything below
        assert proc.poll() is None, f"the sweep ended (exit {proc.returncode}) before it was killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        kept = point_lines(log)
        assert kill_after <= len(kept) < 16
    done = subprocess.run([sys.executable, str(script), log], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    final = point_lines(log)
    keys = [(json.loads(line)["backend"], json.loads(line)["batch_size"]) for line in final]
    assert len(keys) == len(set(keys)) == 16  # 2 backends x 8 batch sizes, each once
    assert final[:len(kept)] == kept  # what was written before the kills is kept as it was
