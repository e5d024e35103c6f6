"""Where a backend runs: ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"`` or ``"auto"`` (the first GPU the
core can see, else the CPU). A device that is asked for and absent is an error that says why, never a
silent fall-back to the CPU."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DeviceUnavailableError
from .info import cuda_module


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


def gpu_count() -> int:
    """CUDA devices batchcore's core can use (0 without ``_cuda``, a driver or a GPU)."""
    cu = cuda_module()
    return 0 if cu is None else cu.device_count()


def spell(device: str | Device, gpus: int) -> Device:
    """The device a string names, by its spelling alone; ``"auto"`` is the first GPU when ``gpus`` > 0.
    Raises DeviceUnavailableError for a malformed name. Availability is the caller's to check (batchcore's
    core and torch each see GPUs their own way)."""
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise DeviceUnavailableError(f"device must be a string such as 'cpu', 'cuda', 'cuda:1' or 'auto', got {device!r}")
    text = device.strip().lower()
    if text == "cpu":
        return Device("cpu")
    if text == "auto":
        return Device("cuda", 0) if gpus > 0 else Device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceUnavailableError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return Device("cuda", int(index or 0))


def parse(device: str | Device) -> Device:
    """The device named by ``device`` as batchcore's core sees it; raises DeviceUnavailableError for a
    malformed or absent one."""
    dev = spell(device, gpu_count())
    require(dev)
    return dev


def require(dev: Device) -> None:
    """Raise DeviceUnavailableError saying why ``dev`` cannot be used (no-op for the CPU)."""
    if dev.kind == "cpu":
        return
    if cuda_module() is None:
        raise DeviceUnavailableError("batchcore was built without CUDA (no nvcc at install time): "
                                     f"{dev} is not available; reinstall where nvcc is on PATH")
    n = gpu_count()
    if n == 0:
        raise DeviceUnavailableError(f"{dev} is not available: the CUDA runtime sees no GPU (no driver or no device)")
    if dev.index >= n:
        raise DeviceUnavailableError(f"{dev} is not available: {n} GPU(s) visible")
