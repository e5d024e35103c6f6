# Generated from the compiled module by `pybind11-stubgen batchcore._cuda` (.ci/stubs); regenerate after changing
# its bindings (tests/test_stubs.py checks that the names agree).
"""
batchcore's CUDA core (compiled where nvcc was found).
"""
from __future__ import annotations

import typing

import numpy
import numpy.typing

import batchcore._core

__all__: list[str] = ['DeviceModel', 'SmClock', 'build_info', 'clock_ghz', 'device_count', 'device_name', 'dot', 'driver_version', 'l2_cache_bytes', 'linear_reference', 'probe_copy', 'probe_fma_peak', 'runtime_version']
class SmClock:
    """
    SM 0's clock over a stretch of a stream's work (nvbench's throttle check).
    """
    def __init__(self, device: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def ghz(self, stream: typing.SupportsInt | typing.SupportsIndex) -> float:
        ...
    def mark_start(self, stream: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def mark_stop(self, stream: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def throttled(self, stream: typing.SupportsInt | typing.SupportsIndex) -> bool:
        ...
    @property
    def default_ghz(self) -> float:
        ...
class DeviceModel:
    """
    A batchcore._core.Model's forward pass on a CUDA device.
    """
    def __init__(self, model: batchcore._core.Model, device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def measure(self, x: typing.Any, timer: batchcore._core.TimerPolicy, options: batchcore._core.RunOptions, cold: bool = False) -> tuple:
        """
        Forward passes timed with CUDA events. Returns (y, summary, peak_bytes, predicted_bytes).
        """
    def plan_bytes(self, batch_size: typing.SupportsInt | typing.SupportsIndex, options: batchcore._core.RunOptions, cold: bool = False) -> int:
        ...
    def run(self, x: typing.Any, options: batchcore._core.RunOptions) -> tuple:
        """
        Forward pass of x (M x input_width). Returns (y, peak_bytes, predicted_bytes).
        """
    def run_zeros(self, batch_size: typing.SupportsInt | typing.SupportsIndex, options: batchcore._core.RunOptions) -> int:
        """
        A forward pass of batch_size zero rows made on the device (no host array); returns the peak bytes. Raises OutOfMemoryError (everything freed) when it does not fit.
        """
    @property
    def current_bytes(self) -> int:
        ...
    @property
    def device(self) -> int:
        ...
    @property
    def input_width(self) -> int:
        ...
    @property
    def l2_flush_bytes(self) -> int:
        ...
    @property
    def memory_limit(self) -> int:
        """
        Byte budget of the device allocator (-1: none); past it a run raises OutOfMemoryError.
        """
    @memory_limit.setter
    def memory_limit(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_width(self) -> int:
        ...
def build_info() -> dict:
    """
    How the CUDA core was compiled.
    """
def clock_ghz(device: typing.SupportsInt | typing.SupportsIndex) -> float:
    """
    The device's default (peak) SM clock in GHz.
    """
def device_count() -> int:
    ...
def device_name(device: typing.SupportsInt | typing.SupportsIndex = 0) -> str:
    ...
def dot(a: typing.Any, b: typing.Any, c: typing.SupportsFloat | typing.SupportsIndex = 0.0, order: batchcore._core.Order = ..., precision: str = 'fp32', device: typing.SupportsInt | typing.SupportsIndex = 0) -> float:
    """
    dot(a, b) + c in a named order, computed by one GPU thread.
    """
def driver_version() -> int:
    """
    The driver's CUDA version as an integer (13000 = 13.0; 0: none).
    """
def l2_cache_bytes(device: typing.SupportsInt | typing.SupportsIndex) -> int:
    ...
def linear_reference(x: typing.Any, weight: typing.Any, bias: typing.Any, order: batchcore._core.Order = ..., precision: str = 'fp32', device: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    ...
def probe_copy(device: typing.SupportsInt | typing.SupportsIndex) -> float:
    """
    Device-to-device copy bandwidth in GB/s (read + write, best of 10).
    """
def probe_fma_peak(device: typing.SupportsInt | typing.SupportsIndex) -> float:
    """
    fp32 fma peak in GFLOP/s (register-resident kernel on every SM, best of 3).
    """
def runtime_version() -> str:
    ...
