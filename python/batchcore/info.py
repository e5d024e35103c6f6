"""The environment a result was measured in: versions, CPU, SIMD level, GPUs, threads."""

from __future__ import annotations

import glob
import os
import platform
import sys
from typing import Any

import numpy as np

from . import _core


def _version() -> str:
    """pyproject.toml's version, as compiled into the core (a source build reports it too)."""
    return str(_core.__version__)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_identity() -> dict:
    """What tells one CPU kind from another: vendor, family, model, stepping, model name, and a digest of
    the feature flags (two "AMD EPYC" VMs of different generations differ in family and model)."""
    import hashlib

    keys = ("vendor_id", "cpu family", "model", "stepping", "model name", "flags")
    fields: dict[str, str | None] = dict.fromkeys(keys)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in fields and fields[key] is None:
                    fields[key] = value.strip()
                if not line.strip() and all(v is not None for v in fields.values()):
                    break  # the first processor is enough
    except OSError:
        pass
    flags = fields.pop("flags")
    fields["flags_digest"] = hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else None
    fields["model name"] = fields["model name"] or cpu_model()
    return fields


def last_level_cache_bytes() -> int | None:
    """Total last-level cache of the online CPUs: each distinct L3 (or the deepest level) counted once."""
    caches: dict[tuple, int] = {}
    for index in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index[0-9]*"):
        try:
            with open(os.path.join(index, "level")) as f:
                level = int(f.read())
            with open(os.path.join(index, "size")) as f:
                size = f.read().strip()
            with open(os.path.join(index, "shared_cpu_list")) as f:
                shared = f.read().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        nbytes = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        caches[(level, shared)] = nbytes
    if not caches:
        return None
    deepest = max(level for level, _ in caches)
    return sum(n for (level, _), n in caches.items() if level == deepest)


def cuda_module() -> Any:
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


# The environment variables that decide how threads of the BLAS and OpenMP runtimes behave between calls
# (spinning or sleeping) and how many there are: a neighbour's threads that keep spinning after a call take
# cores from the next one, so every record says what they were.
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def thread_environment() -> dict[str, str | None]:
    """The values of THREAD_ENV in this process (None: unset)."""
    return {name: os.environ.get(name) for name in THREAD_ENV}


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    d = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),  # at the time of the record; torch backends set their own
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_cuda": torch.version.cuda,
        "torch_allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "torch_allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "torch_fp16_reduced_precision_reduction": torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "torch_bf16_reduced_precision_reduction": torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    return d


def _cupy_version() -> str | None:
    try:
        import cupy
    except Exception:  # absent, or present without a usable CUDA: either way not part of this record
        return None
    return cupy.__version__


def _numpy_blas() -> str | None:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # numpy < 2 or a build without the record: leave it out rather than guess
        return None


def _gpu_info(cu: Any) -> list[dict[str, Any]]:
    if cu is None:
        return []
    return [{"index": i, "name": cu.device_name(i), "default_sm_clock_ghz": cu.clock_ghz(i),
             "l2_bytes": cu.l2_cache_bytes(i)} for i in range(cu.device_count())]


def info() -> dict[str, Any]:
    """A dict describing this installation and machine; every sweep result carries it: versions
    (batchcore, numpy and its BLAS, torch, CuPy, CUDA runtime and driver), how the core was compiled,
    the CPU and its SIMD level, thread counts and the threading runtimes' environment variables, the GPUs
    with their default SM clocks, and torch's TF32 and reduced-precision-reduction flags."""
    cu = cuda_module()
    driver = cu.driver_version() if cu is not None else 0
    return {
        "batchcore": _version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        **_torch_info(),
        "cupy": _cupy_version(),
        "cpu": cpu_model(),
        "cpu_identity": cpu_identity(),
        "cpu_count": os.cpu_count(),
        "simd": _core.simd_level(),
        "cpu_caches": _core.cache_sizes(),
        "native_threads_default": _core.default_threads(),
        "thread_environment": thread_environment(),
        "build": {**_core.build_info(), **(cu.build_info() if cu is not None else {})},
        "cuda_compiled": cu is not None,
        "cuda_runtime": cu.runtime_version() if cu is not None else None,
        "cuda_driver": f"{driver // 1000}.{driver % 1000 // 10}" if driver else None,
        "gpus": _gpu_info(cu),
    }


# The environment variables that choose which kernels a library runs (and so its bits) on the same CPU:
# two processes on one machine, one of them started with ATEN_CPU_CAPABILITY=avx2, are two machine kinds.
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "MKL_DEBUG_CPU_TYPE", "ONEDNN_MAX_CPU_ISA",
              "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS", "OPENBLAS_CORETYPE", "BATCHCORE_TUNE")

# The libraries whose versions a machine kind includes, read from their installed metadata (never imported:
# an identity is asked of every node of a cluster, and importing TensorFlow there costs seconds).
KIND_PACKAGES = ("numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "onnxruntime", "jax", "jaxlib", "cupy-cuda13x")


def _installed_versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in KIND_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_identity() -> dict[str, Any]:
    """What decides the bits and the speed a node gives, without importing any framework: the CPU
    (:func:`cpu_identity`), its core count and SIMD level as the core sees them, the GPUs, the versions of
    batchcore, Python, NumPy's BLAS and every framework installed, how the core was compiled, and the
    kernel-choosing environment variables (:data:`KERNEL_ENV`). ``kind``: a short digest of all of it, equal
    on two nodes exactly when everything listed is equal; ``host``: this machine's name (not in the kind)."""
    import hashlib
    import json
    import socket

    identity: dict[str, Any] = {
        "cpu_identity": cpu_identity(),
        "cpu_count": os.cpu_count(),
        "simd": _core.simd_level(),
        "gpus": gpus(),
        "batchcore": _version(),
        "python": sys.version.split()[0],
        "numpy_blas": _numpy_blas(),
        "packages": _installed_versions(),
        "build": _core.build_info(),
        "kernel_environment": {name: os.environ[name] for name in KERNEL_ENV if name in os.environ},
    }
    identity["kind"] = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    identity["host"] = socket.gethostname()
    return identity


def kind_name(identity: dict[str, Any]) -> str:
    """A machine kind in words: the CPU's model name (family and model), its kernel environment, and the
    kind's digest, e.g. ``"Intel(R) Xeon(R) Processor (6/167) ATEN_CPU_CAPABILITY=avx2 [3f2a9c01d4e2]"``."""
    cpu = identity.get("cpu_identity") or {}
    words = [str(cpu.get("model name") or "unknown CPU")]
    if cpu.get("cpu family") and cpu.get("model"):
        words.append(f"({cpu['cpu family']}/{cpu['model']})")
    words += [f"{k}={v}" for k, v in sorted((identity.get("kernel_environment") or {}).items())]
    words += [str(g) for g in identity.get("gpus") or []]
    return " ".join(words) + f" [{identity.get('kind')}]"
