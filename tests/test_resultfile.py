"""Result files: atomic writes that leave nothing behind on failure, JSON-safe values, torn lines cut
before appends, and both formats read back alike."""

import json
import math
import os

import pytest

import batchcore as bc
from batchcore import files as resultfile  # the module was resultfile.py


def test_json_safe_replaces_every_non_finite_number():
    value = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": 3, "e": "nan", "f": (2.5,)}
    assert resultfile.json_safe(value) == {"a": None, "b": [1.0, None, {"c": None}], "d": 3, "e": "nan", "f": [2.5]}


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        resultfile.atomic_write(path, 12345)  # not text: fails inside the write
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]


def test_a_torn_last_line_is_cut_before_appending(tmp_path):
    path = tmp_path / "log.jsonl"
    header = {"type": "header", "config": {"model": "m"}, "env": {}}
    point = {"type": "point", "backend": "b", "batch_size": 1}
    whole = (json.dumps(header) + "\n" + json.dumps(point) + "\n").encode()
    path.write_bytes(whole + b'{"type": "point", "backend": "b", "bat')
    got_header, points = resultfile.read_jsonl(path, repair=True)
    assert got_header == header and points == [{"backend": "b", "batch_size": 1}]
    assert path.read_bytes() == whole


def test_both_formats_read_back_the_same_points(tmp_path):
    res = bc.SweepResult([{"backend": "b", "batch_size": 2, "time_ms": 1.5}], {"cpu": "x"}, {"model": "m"})
    res.to_json(tmp_path / "r.json")
    log = resultfile.PointLog(tmp_path / "r.jsonl", {"model": "m"}, {"cpu": "x"})
    log.write(res.points[0])
    a, b = bc.SweepResult.from_json(tmp_path / "r.json"), bc.SweepResult.from_json(tmp_path / "r.jsonl")
    assert a.points == b.points == res.points and a.env == b.env and a.config == b.config


def test_a_log_of_the_same_sweep_resumes_and_another_is_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    resultfile.PointLog(path, {"model": "m"}, {}).write({"backend": "b", "batch_size": 1})
    assert resultfile.PointLog(path, {"model": "m"}, {}).done == [{"backend": "b", "batch_size": 1}]
    with pytest.raises(bc.ResultFileError, match="different sweep"):
        resultfile.PointLog(path, {"model": "other"}, {})


def test_a_line_that_is_not_utf8_is_named_as_damage(tmp_path):
    path = tmp_path / "r.jsonl"
    resultfile.PointLog(path, {"model": "m"}, {}).write({"backend": "b", "batch_size": 1})
    with open(path, "ab") as f:
        f.write(b'{"type": "point", "backend": "\xff\xfe", "batch_size": 2}\n')  # bytes batchcore never writes
    before = path.read_bytes()
    with pytest.raises(bc.ResultFileError, match="line 3 is not UTF-8 text"):
        resultfile.PointLog(path, {"model": "m"}, {})
    with pytest.raises(bc.ResultFileError, match="not UTF-8"):
        bc.SweepResult.from_json(path)
    assert path.read_bytes() == before  # named, and left as it was


@pytest.mark.parametrize("content, named", [(b"\0" * 4096, "only NUL bytes"), (b"PK\x03\x04zip", "something else")])
def test_a_file_that_is_not_a_log_is_not_overwritten(tmp_path, content, named):
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(bc.ResultFileError, match=named):
        resultfile.PointLog(path, {"model": "m"}, {})
    assert path.read_bytes() == content
    # batchcore's own log torn inside its header line holds no point: that one starts again
    path.write_bytes(b'{"type": "hea')
    resultfile.PointLog(path, {"model": "m"}, {})
    assert path.read_bytes().startswith(b'{"type": "header", "config": {"model": "m"}')
