"""The table and the classes as text: every point a row, columns aligned, missing values as "-", memory
measured from outside marked "~", and the class numbers those of res.classes()."""

import batchcore as bc
from batchcore.present.text import Classes


def point(backend, B, fingerprint, memory="tracked allocator (exact)", **extra):
    p = {"backend": backend, "batch_size": B, "time_ms": 0.5, "time_ms_ci_low": 0.49, "time_ms_ci_high": 0.51,
         "samples": 60, "target_met": True, "noisy": False, "samples_per_s": B / 5e-4, "gflops": 1.0,
         "peak_frac": 0.25, "roofline_frac": 0.5, "peak_bytes": 3 * 2**20, "memory_method": memory,
         "bitwise_equal_frac": 1.0, "max_ulp_vs_b1": 0, "argmax_changed": 0, "accuracy": None,
         "max_ulp_vs_exact": 2, "fingerprint": fingerprint}
    p.update(extra)
    return p


def test_the_table_has_a_row_per_point_and_aligned_columns():
    res = bc.SweepResult([point("native[seq]", 1, "a"), point("native[seq]", 8, "a"),
                          point("torch[cpu]", 1, "b", memory="peak RSS growth ...", peak_bytes=None),
                          point("torch[cpu]", 8, "c", memory="peak RSS growth ...", noisy=True, target_met=False)])
    lines = res.table().splitlines()
    assert len(lines) == 2 + 4 and lines[0].split()[:3] == ["backend", "B", "time"]
    assert len({len(line) for line in lines[:2]}) == 1  # the rule under the header is as wide as it
    native, _, torch_b1, torch_b8 = lines[2:]
    assert "3.000" in native and "~" not in native  # exact memory, in MiB
    assert " - " in torch_b1  # no memory measured
    assert "no!" in torch_b8  # target missed and noisy
    assert native.split()[-1] == "0" and torch_b8.split()[-1] == "1"  # torch: {1} {8}, B=8 in class 1


def test_classes_say_batch_invariant_or_how_many():
    text = str(Classes({"native[seq]": [[1, 2, 8]], "numpy": [[1], [2, 8]]}))
    assert "batch invariant:  {1, 2, 8}" in text and "2 classes:  {1}  {2, 8}" in text
