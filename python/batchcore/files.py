"""Result files: written atomically or appended line by line, read back with every damage named.

Two formats: one JSON document ``{"env", "config", "points"}`` (``SweepResult.to_json``) and a JSON-lines
log (``sweep(out=...)``): a header line ``{"type": "header", "config", "env"}``, then one line
``{"type": "point", ...}`` per measured point, each flushed and synced as it is written. A torn last
line (a write cut by a kill or a full disk) is dropped, and cut from the file before a resumed sweep
appends; a log torn inside its header holds no point and starts again. Anything else that is not
batchcore's format raises :class:`ResultFileError` naming the path and the problem. Values are made
JSON-safe before they are written (a non-finite number becomes null), so no point is ever refused.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

from .errors import ResultFileError

StrPath = str | os.PathLike[str]  # a file path
Record = dict[str, Any]  # a JSON object: a point, a header, an environment

REQUIRED_POINT_FIELDS = {"backend": str, "batch_size": int}


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None, recursively (JSON has none)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _umask() -> int:
    # Linux reports it without changing it; os.umask can only be read by setting it (racy with threads).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: StrPath, text: str | bytes) -> None:
    """Write ``text`` (or bytes: an image) to ``path`` through a temporary file in the same folder, synced, then renamed into
    place: readers see the old file or the new one, never half of one. The file gets the mode a plain
    ``open(path, "w")`` would (0666 less the umask)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ResultFileError(f"{path} is a directory; pass a file path")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".batchcore-", suffix=".tmp")
    except OSError as e:
        raise ResultFileError(f"cannot write {path}: {e.strerror or e} (folder {folder})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ResultFileError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def _read_bytes(path: StrPath) -> bytes:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise ResultFileError(f"{path} is a directory, not a result file") from None
    except OSError as e:
        raise ResultFileError(f"cannot read {path}: {e.strerror or e}") from None


def _check_point(path: StrPath, where: str, rec: Any) -> Record:
    if not isinstance(rec, dict):
        raise ResultFileError(f"{path}: {where} is not a point (a JSON object), got {type(rec).__name__}")
    for name, kind in REQUIRED_POINT_FIELDS.items():
        if not isinstance(rec.get(name), kind) or isinstance(rec.get(name), bool):
            raise ResultFileError(f"{path}: {where} has no valid {name!r} field")
    return rec


def read_jsonl(path: StrPath, repair: bool = False, data: bytes | None = None) -> tuple[Record | None, list[Record]]:
    """Header and points of a JSON-lines result file. A torn last line is dropped, and with ``repair``
    cut from the file so that appends continue cleanly. Returns ``(header or None, points)``: None when
    not even the header line is complete (the file holds no point)."""
    data = _read_bytes(path) if data is None else data
    points: list[Record] = []
    header, good_end, pos, line_no = None, 0, 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # no newline: the last write was interrupted
        line_no += 1
        try:
            text = data[pos:nl].decode("utf-8")
        except UnicodeDecodeError:  # bytes batchcore never writes: damage, not a torn write
            raise ResultFileError(f"{path}: line {line_no} is not UTF-8 text: the file is damaged") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            if data.rfind(b"\n") > nl:
                raise ResultFileError(f"{path}: line {line_no} is not valid JSON (and not a torn last line)") from None
            break  # the last line with a newline is torn (a write reordered by the file system)
        if not isinstance(rec, dict) or rec.get("type") not in ("header", "point", "explain"):
            raise ResultFileError(f"{path}: line {line_no} is not a batchcore header, point or explain record")
        if rec["type"] == "explain":  # a point's cause, revealed after the timing: joined to its point
            key = (rec.get("backend"), rec.get("batch_size"))
            point = next((p for p in reversed(points) if (p["backend"], p["batch_size"]) == key), None)
            if point is None or not isinstance(rec.get("explain"), dict):
                raise ResultFileError(f"{path}: line {line_no} explains no point before it")
            point["explain"] = rec["explain"]
        elif rec["type"] == "header":
            if line_no != 1:
                raise ResultFileError(f"{path}: line {line_no} is a second header (two sweeps in one file)")
            header = rec
        else:
            if header is None:
                raise ResultFileError(f"{path}: line {line_no} is a point before any header")
            points.append(_check_point(path, f"line {line_no}", {k: v for k, v in rec.items() if k != "type"}))
        pos = good_end = nl + 1
    if repair and good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return header, points


def load(path: StrPath) -> tuple[list[Record], Record, Record]:
    """``(points, env, config)`` of a file written by ``to_json`` or ``sweep(out=...)``."""
    data = _read_bytes(path)
    if not data.strip():
        raise ResultFileError(f"{os.fspath(path)} is empty: not a batchcore result file")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ResultFileError(f"{os.fspath(path)} is not text (not UTF-8): not a batchcore result file") from None
    except json.JSONDecodeError:
        doc = None  # not one JSON document: a JSON-lines log
    if isinstance(doc, dict) and doc.get("type") != "header":
        points = doc.get("points")
        if not isinstance(points, list):
            raise ResultFileError(f"{os.fspath(path)} is JSON but not a batchcore result (no list of points)")
        checked = [_check_point(path, f"point {i}", p) for i, p in enumerate(points)]
        return checked, _mapping(path, doc, "env"), _mapping(path, doc, "config")
    if doc is not None and not isinstance(doc, dict):
        raise ResultFileError(f"{os.fspath(path)} is JSON but not a batchcore result (a {type(doc).__name__})")
    header, points = read_jsonl(path, data=data)
    if header is None:
        raise ResultFileError(f"{os.fspath(path)} has no complete header line: not a batchcore result file")
    return points, _mapping(path, header, "env"), _mapping(path, header, "config")


def _mapping(path: StrPath, doc: Record, key: str) -> Record:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ResultFileError(f"{os.fspath(path)}: {key!r} is not a JSON object")
    return value


HEADER_START = b'{"type": "header"'  # how every log batchcore writes begins


def _refuse_foreign_start(path: str, data: bytes) -> None:
    """A log is overwritten only when it is batchcore's own, torn inside its header line (no point was ever
    written); anything else in its place (NUL bytes left by a file system, another program's file) is named
    and left alone."""
    start = data[:len(HEADER_START)]
    if HEADER_START.startswith(start) or start.startswith(HEADER_START):
        return
    what = f"only NUL bytes ({len(data)})" if not data.strip(b"\0") else f"something else (it begins {start[:16]!r})"
    raise ResultFileError(f"{path} is not a batchcore log: it holds {what}; remove it or pass another out= path")


class PointLog:
    """Append-only JSON-lines log of one sweep: a header line, then one line per point, each flushed and
    synced as it is written. An existing log of the same sweep (same ``config``) is resumed: its points
    are in ``done``. The file is opened when the log is made, so a bad path fails before any measuring."""

    def __init__(self, path: StrPath, config: Record, env: Record):
        self.path = os.fspath(path)
        self.done: list[Record] = []
        if os.path.isdir(self.path):
            raise ResultFileError(f"out={self.path!r} is a directory; pass a file path")
        header = None
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            data = _read_bytes(self.path)  # read once: checked, then parsed
            _refuse_foreign_start(self.path, data)
            header, self.done = read_jsonl(self.path, repair=True, data=data)
            if header is not None and header.get("config") != config:
                raise ResultFileError(f"{self.path} holds a different sweep (model, data or labels differ); "
                                      "pass another out= path or remove the file")
        if header is None:  # new, empty, or torn inside its header line (no point was ever written)
            self._append({"type": "header", "config": config, "env": env}, mode="w")

    def _append(self, rec: Record, mode: str = "a") -> None:
        line = json.dumps(json_safe(rec), allow_nan=False) + "\n"
        try:
            with open(self.path, mode) as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise ResultFileError(f"cannot write {self.path}: {e.strerror or e}") from None

    def write(self, point: Record) -> None:
        self._append({"type": "point", **point})

    def write_explain(self, point: Record) -> None:
        """A point's ``explain`` (found after its timing), as a line of its own that readers join to the point."""
        self._append({"type": "explain", "backend": point["backend"], "batch_size": point["batch_size"],
                      "explain": point["explain"]})
