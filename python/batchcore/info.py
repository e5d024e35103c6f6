"""The environment a result was measured in: versions, CPU, SIMD level, GPUs, threads."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import numpy as np

from . import _core


def _version() -> str:
    try:
        return metadata.version("batchcore")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cuda_module():
    """The compiled ``_cuda`` extension, or None where it was not built."""
    try:
        from . import _cuda
    except ImportError:
        return None
    return _cuda


def gpus() -> list[str]:
    """Names of the CUDA devices the core can see (empty without a GPU, a driver or ``_cuda``)."""
    cu = cuda_module()
    if cu is None:
        return []
    return [cu.device_name(i) for i in range(cu.device_count())]


def info() -> dict:
    """A dict describing this installation and machine; every sweep result carries it."""
    try:
        import torch

        torch_version, torch_threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version = torch_threads = None
    cu = cuda_module()
    return {
        "batchcore": _version(),
        "cuda_compiled": cu is not None,
        "cuda_runtime": cu.runtime_version() if cu is not None else None,
        "gpus": gpus(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "simd": _core.simd_level(),
        "native_threads_default": _core.default_threads(),
        "torch": torch_version,
        "torch_threads": torch_threads,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "compile_flags": "C++: -O3 -ffp-contract=off -fno-fast-math; CUDA: --fmad=false",
    }
