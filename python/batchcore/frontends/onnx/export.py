"""``bc.export_onnx``: a user's torch module written as an ONNX file with a dynamic batch axis, by torch's
own exporter (``torch.onnx.export``, through ``torch.export``), checked before it is kept: every input and
output has the batch as a symbolic first dimension, and ONNX Runtime's outputs on the sample are within
the exporter's usual distance of torch's. The file appears whole or not at all."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import re
import tempfile
import warnings
from typing import Any

import numpy as np

from ...errors import ArgumentError, MissingDependencyError, ShapeError, UnsupportedLayerError
from .module import _dims, import_onnx, import_onnxruntime


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporter's progress lines, warnings and log records kept off the user's console (they are about
    batchcore's capture; a failure says why in its exception)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._export", "torch.export", "torch._dynamo",
                                              "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(module: Any, sample: Any, path: str | os.PathLike[str], opset: int | None = None) -> pathlib.Path:
    """Write ``module`` (a torch module in eval mode, one input tensor) to ``path`` as ONNX with the batch
    (the first dimension of ``sample``, a tensor or numpy array of a few rows) dynamic; ``opset``: the ONNX
    opset (None: the exporter's default). Returns the path. UnsupportedLayerError when torch cannot export
    the module, ShapeError when the export fixes the batch axis (a forward whose result depends on the
    batch size), ArgumentError for a bad path; nothing is left at ``path`` then."""
    from ..torch.chain import import_torch

    torch = import_torch()
    import_onnx()
    import_onnxruntime()
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before it fails deep inside)
    except ImportError as e:
        raise MissingDependencyError('torch.onnx.export needs onnxscript: pip install "batchcore[onnx]"') from e
    target = pathlib.Path(path)
    if target.suffix.lower() != ".onnx":
        raise ArgumentError(f"path must end in .onnx, got {str(path)!r}")
    if not target.parent.is_dir():
        raise ArgumentError(f"cannot write {target}: {target.parent} is not a directory")
    x = torch.from_numpy(np.ascontiguousarray(sample)) if isinstance(sample, np.ndarray) else sample
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == 0:
        raise ShapeError("sample must be a tensor or numpy array of a few rows (first dimension: the batch)")
    if x.shape[0] == 1:  # export specializes a dimension of 1; two rows leave the batch symbolic
        x = torch.cat([x, x])
    name = type(module).__name__
    was_training = getattr(module, "training", False)
    module.eval()
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        try:
            with _quiet():
                torch.onnx.export(module, (x,), tmp, dynamic_shapes=({0: torch.export.Dim("batch")},),
                                  opset_version=opset, external_data=False, verbose=False)
        except Exception as e:
            raise UnsupportedLayerError(f"torch.onnx.export could not export {name} ({_export_failure(e)})") from e
        _check_batch_axes(tmp, name)
        _check_against_torch(torch, module, x, tmp, name)
        os.replace(tmp, target)
    finally:
        module.train(was_training)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return target


def _export_failure(e: Exception) -> str:
    """What made torch's exporter fail, in one line: the cause its report summarises (after "Exception
    summary"), else the message's first line; colour codes dropped; a hint for a model that returns a cache."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(e).splitlines()]
    summary = [line for line in lines if line.startswith("<class '")]
    why = summary[0] if summary else next((line for line in lines if line), type(e).__name__)
    why = re.sub(r"^<class '(?:[\w.]*\.)?(\w+)'>: ", r"\1: ", why)
    if "Cache" in why:
        why += " (a Hugging Face model returns its key/value cache unless its config says use_cache=False)"
    return why


def _check_batch_axes(path: str, name: str) -> None:
    onnx = import_onnx()
    graph = onnx.load(path).graph
    for value in [*graph.input, *graph.output]:
        dims = _dims(value)
        if dims and isinstance(dims[0], int):
            raise ShapeError(f"the export of {name} fixed the batch dimension of {value.name!r} at {dims[0]} ({dims}): "
                             "its forward depends on the batch size, so no other batch size could run it")


def _check_against_torch(torch: Any, module: Any, x: Any, path: str, name: str) -> None:
    """ONNX Runtime's first output on the sample (a plain session), against torch's: an exporter that changed
    the model fails here."""
    from ..torch.capture import first_tensor

    onnxruntime = import_onnxruntime()

    with torch.no_grad():
        want = first_tensor(torch, module(x), name).numpy()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
        raise UnsupportedLayerError(f"the export of {name} computes something else than the module: ONNX Runtime's "
                                    f"first output {got.shape} differs from torch's {want.shape} on the sample")
