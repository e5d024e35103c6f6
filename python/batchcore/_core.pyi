# Generated from the compiled module by `pybind11-stubgen batchcore._core` (.ci/stubs); regenerate after changing
# its bindings (tests/test_stubs.py checks that the names agree).
"""
batchcore's CPU core: named accumulation orders, GEMM, forward passes, tracked memory.
"""
from __future__ import annotations

import collections.abc
import typing
from types import ModuleType

import numpy
import numpy.typing

__all__: list[str] = ['ArgumentError', 'BatchcoreError', 'DTypeError', 'DeviceUnavailableError', 'Graph', 'Model', 'NonFiniteError', 'Order', 'OrderError', 'OutOfMemoryError', 'RunOptions', 'ShapeError', 'TimerPolicy', 'UnsupportedLayerError', 'build_info', 'cache_sizes', 'check_rows', 'check_samples', 'default_threads', 'dot', 'gemm_tuning', 'order_grammar', 'parse_precision', 'probe_clock_ghz', 'probe_fma_peak', 'probe_triad', 'round_to', 'set_gemm_tuning', 'simd_level', 'simd_levels', 'testing', 'time_callable', 'timer_replay']
class BatchcoreError(Exception):
    pass
class ShapeError(BatchcoreError):
    pass
class DTypeError(BatchcoreError):
    pass
class NonFiniteError(BatchcoreError):
    pass
class OrderError(BatchcoreError):
    pass
class UnsupportedLayerError(BatchcoreError):
    pass
class DeviceUnavailableError(BatchcoreError):
    pass
class OutOfMemoryError(BatchcoreError):
    pass
class ArgumentError(BatchcoreError):
    pass
class Order:
    """
    An accumulation order, parsed once from its spelling (docs/orders.md). Equal orders compare and hash equal; str() gives the canonical spelling.
    """
    def __eq__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __hash__(self) -> int:
        ...
    def __init__(self, spelling: str) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __str__(self) -> str:
        ...
    @property
    def kind(self) -> str:
        """
        The order's name without its parameter: seq, chunk, lanes, ...
        """
    @property
    def param(self) -> int:
        """
        C of chunk:C, S of splitk:S, W of lanes:W; 0 for the others.
        """
class RunOptions:
    """
    How a forward pass runs, parsed once: order, precision, policy (they fix the bits), and threads and SIMD level (they never change them). Immutable.
    """
    def __init__(self, order: Order = ..., precision: str = 'fp32', policy: str = 'fixed', threads: typing.SupportsInt | typing.SupportsIndex | None = None, simd: str = 'auto') -> None:
        """
        threads=None: all cores; simd='auto': the best level this CPU has.
        """
    def __repr__(self) -> str:
        ...
    def resolve(self, batch_size: typing.SupportsInt | typing.SupportsIndex) -> Order:
        """
        The order a pass of batch_size rows runs under the policy.
        """
    @property
    def order(self) -> Order:
        ...
    @property
    def policy(self) -> str:
        ...
    @property
    def precision(self) -> str:
        ...
    @property
    def simd(self) -> str:
        ...
    @property
    def threads(self) -> int:
        ...
class TimerPolicy:
    """
    The timer's settings; see batchcore.Timer for their meaning.
    """
    def __init__(self) -> None:
        ...
    def check(self) -> None:
        ...
    @property
    def confidence(self) -> float:
        ...
    @confidence.setter
    def confidence(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def max_samples(self) -> int:
        ...
    @max_samples.setter
    def max_samples(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def min_samples(self) -> int:
        ...
    @min_samples.setter
    def min_samples(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def min_time_s(self) -> float:
        ...
    @min_time_s.setter
    def min_time_s(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def overhead_frac(self) -> float:
        ...
    @overhead_frac.setter
    def overhead_frac(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def target(self) -> float:
        ...
    @target.setter
    def target(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def timeout_s(self) -> float:
        ...
    @timeout_s.setter
    def timeout_s(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def warmup_calls(self) -> int:
        ...
    @warmup_calls.setter
    def warmup_calls(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def warmup_s(self) -> float:
        ...
    @warmup_s.setter
    def warmup_s(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class Model:
    def __init__(self, input_width: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def add_activation(self, name: str, alpha: typing.SupportsFloat | typing.SupportsIndex | None = None) -> None:
        """
        An element-wise activation; alpha: leaky_relu's negative slope or elu's alpha (those two only).
        """
    def add_batch_norm(self, scale: typing.Any, shift: typing.Any) -> None:
        """
        Batch norm in eval mode, folded to x * scale + shift.
        """
    def add_layer_norm(self, arg0: typing.Any, arg1: typing.Any, arg2: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def add_linear(self, weight: typing.Any, bias: typing.Any) -> None:
        ...
    def add_softmax(self) -> None:
        ...
    def measure(self, x: typing.Any, timer: TimerPolicy, options: RunOptions = ..., cold_bytes: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.float32], dict, int, int]:
        """
        Forward passes of x timed by the timer policy; cold_bytes > 0: each pass reads the next of copies of x holding that many bytes. Returns (y, summary, peak_bytes, predicted_bytes).
        """
    def plan_bytes(self, batch_size: typing.SupportsInt | typing.SupportsIndex, options: RunOptions = ..., cold_bytes: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
        """
        Exact peak bytes a pass of batch_size samples holds (packed weights included).
        """
    def release_cached(self) -> None:
        ...
    def run(self, x: typing.Any, options: RunOptions = ...) -> tuple[numpy.typing.NDArray[numpy.float32], int, int]:
        """
        One forward pass of x (M samples). Returns (y, peak_bytes, predicted_bytes).
        """
    def run_batched(self, x: typing.Any, batch_size: typing.SupportsInt | typing.SupportsIndex, options: RunOptions = ...) -> numpy.typing.NDArray[numpy.float32]:
        """
        Consecutive batches of batch_size samples (the last one shorter), outputs concatenated.
        """
    @property
    def cached_bytes(self) -> int:
        """
        Freed bytes kept for reuse by the next run of the same shape.
        """
    @property
    def current_bytes(self) -> int:
        """
        Live tracked bytes (the packed weights between runs).
        """
    @property
    def flops_per_row(self) -> int:
        ...
    @property
    def input_width(self) -> int:
        ...
    @property
    def memory_limit(self) -> int:
        """
        Byte budget of the model's tracking allocator (-1: none); past it a run raises OutOfMemoryError.
        """
    @memory_limit.setter
    def memory_limit(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_width(self) -> int:
        ...
class Graph:
    """
    A model as a graph of operations over batches of N-D samples; each add_* returns the new value's id (the input is value 0).
    """
    def __init__(self, input_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        """
        input_shape: one sample's shape (no batch dimension).
        """
    def __repr__(self) -> str:
        ...
    def add_activation(self, x: typing.SupportsInt | typing.SupportsIndex, name: str, alpha: typing.SupportsFloat | typing.SupportsIndex | None = None) -> int:
        """
        An element-wise activation; alpha: leaky_relu's negative slope or elu's alpha (those two only).
        """
    def add_adaptive_avg_pool2d(self, x: typing.SupportsInt | typing.SupportsIndex, output_size: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"]) -> int:
        ...
    def add_attention(self, q: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, v: typing.SupportsInt | typing.SupportsIndex, scale: typing.SupportsFloat | typing.SupportsIndex, causal: bool = False) -> int:
        """
        Scaled dot-product attention over the last two dimensions (the leading ones are groups, e.g. heads).
        """
    def add_avg_pool2d(self, x: typing.SupportsInt | typing.SupportsIndex, kernel: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"], stride: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"], padding: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [0, 0], ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
        ...
    def add_binary(self, a: typing.SupportsInt | typing.SupportsIndex, b: typing.SupportsInt | typing.SupportsIndex, op: str) -> int:
        ...
    def add_channel_affine(self, x: typing.SupportsInt | typing.SupportsIndex, scale: typing.Any, shift: typing.Any) -> int:
        """
        y = x * scale[c] + shift[c], c the sample's first dimension (batch norm in eval mode, folded).
        """
    def add_concat(self, xs: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], dim: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def add_constant(self, arg0: typing.Any) -> int:
        ...
    def add_conv2d(self, x: typing.SupportsInt | typing.SupportsIndex, weight: typing.Any, bias: typing.Any, stride: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [1, 1], padding: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [0, 0], dilation: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [1, 1], groups: typing.SupportsInt | typing.SupportsIndex = 1, input_dilation: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] | None = None, extra_padding: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] | None = None) -> int:
        """
        A 2-D convolution; input_dilation (zeros between the input's neighbours) and extra_padding (at the end only) make it a transposed convolution's (see conv.hpp).
        """
    def add_embedding(self, x: typing.SupportsInt | typing.SupportsIndex, table: typing.Any) -> int:
        """
        Rows of table for x's token ids (float32 integers).
        """
    def add_layer_norm(self, x: typing.SupportsInt | typing.SupportsIndex, weight: typing.Any, bias: typing.Any, eps: typing.SupportsFloat | typing.SupportsIndex) -> int:
        ...
    def add_linear(self, x: typing.SupportsInt | typing.SupportsIndex, weight: typing.Any, bias: typing.Any) -> int:
        ...
    def add_log_softmax(self, x: typing.SupportsInt | typing.SupportsIndex, dim: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def add_matmul(self, a: typing.SupportsInt | typing.SupportsIndex, b: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        a (..., m, k) times b (..., k, n), both depending on the input, per group of the leading dimensions: each element a dot over k in the run's order.
        """
    def add_max_pool2d(self, x: typing.SupportsInt | typing.SupportsIndex, kernel: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"], stride: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"], padding: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [0, 0], dilation: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"] = [1, 1], ceil_mode: bool = False) -> int:
        ...
    def add_permute(self, x: typing.SupportsInt | typing.SupportsIndex, perm: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> int:
        ...
    def add_reduce(self, x: typing.SupportsInt | typing.SupportsIndex, dim: typing.SupportsInt | typing.SupportsIndex, mean: bool) -> int:
        """
        Sum (mean=False) or mean over one sample dimension, left to right from the first value.
        """
    def add_reshape(self, x: typing.SupportsInt | typing.SupportsIndex, shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> int:
        ...
    def add_slice(self, x: typing.SupportsInt | typing.SupportsIndex, dim: typing.SupportsInt | typing.SupportsIndex, start: typing.SupportsInt | typing.SupportsIndex, stop: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex = 1) -> int:
        """
        x's entries start, start + step, ... below stop along one sample dimension (copies).
        """
    def add_softmax(self, x: typing.SupportsInt | typing.SupportsIndex, dim: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def describe(self) -> str:
        ...
    def measure(self, x: typing.Any, timer: TimerPolicy, options: RunOptions = ..., cold_bytes: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.float32], dict, int, int]:
        """
        Forward passes of x timed by the timer policy; cold_bytes > 0: each pass reads the next of copies of x holding that many bytes. Returns (y, summary, peak_bytes, predicted_bytes).
        """
    def plan_bytes(self, batch_size: typing.SupportsInt | typing.SupportsIndex, options: RunOptions = ..., cold_bytes: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
        """
        Exact peak bytes a pass of batch_size samples holds (packed weights included).
        """
    def release_cached(self) -> None:
        ...
    def run(self, x: typing.Any, options: RunOptions = ...) -> tuple[numpy.typing.NDArray[numpy.float32], int, int]:
        """
        One forward pass of x (M samples). Returns (y, peak_bytes, predicted_bytes).
        """
    def run_batched(self, x: typing.Any, batch_size: typing.SupportsInt | typing.SupportsIndex, options: RunOptions = ...) -> numpy.typing.NDArray[numpy.float32]:
        """
        Consecutive batches of batch_size samples (the last one shorter), outputs concatenated.
        """
    def set_output(self, value: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def shape_of(self, value: typing.SupportsInt | typing.SupportsIndex) -> list[int]:
        ...
    @property
    def cached_bytes(self) -> int:
        """
        Freed bytes kept for reuse by the next run of the same shape.
        """
    @property
    def current_bytes(self) -> int:
        """
        Live tracked bytes (the packed weights between runs).
        """
    @property
    def flops_per_sample(self) -> int:
        ...
    @property
    def input_shape(self) -> list[int]:
        ...
    @property
    def memory_limit(self) -> int:
        """
        Byte budget of the model's tracking allocator (-1: none); past it a run raises OutOfMemoryError.
        """
    @memory_limit.setter
    def memory_limit(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_shape(self) -> list[int]:
        ...
def build_info() -> dict:
    """
    How the C++ core was compiled: compiler, flags of the core, per-instruction-set kernel flags.
    """
def cache_sizes() -> dict:
    """
    The caches the GEMM's blocking reads (bytes; per core for L1d and L2): a dict with the source.
    """
def check_rows(x: typing.Any, width: typing.SupportsInt | typing.SupportsIndex, finite: bool = True) -> None:
    """
    The checks every forward pass's input meets, whichever backend runs it: a C-contiguous, non-empty float32 numpy array of rows of `width` values (DTypeError, ShapeError); with finite, NonFiniteError naming the first NaN or Inf (the scan every pass of the core makes, on the core's threads).
    """
def check_samples(x: typing.Any, shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], finite: bool = True) -> None:
    """
    check_rows for a graph's input: a C-contiguous, non-empty float32 array of samples of `shape`; with finite, NonFiniteError naming the first NaN or Inf (by sample and flat index within it).
    """
def default_threads() -> int:
    ...
def dot(a: typing.Any, b: typing.Any, c: typing.SupportsFloat | typing.SupportsIndex = 0.0, order: Order = ..., precision: str = 'fp32') -> float:
    ...
def gemm_tuning() -> dict:
    """
    The GEMM's scheduling parameters now in force (gemm_tuning.hpp); they never change a bit.
    """
def order_grammar() -> list[str]:
    ...
def parse_precision(arg0: str) -> str:
    ...
def probe_clock_ghz(threads: typing.SupportsInt | typing.SupportsIndex, seconds: typing.SupportsFloat | typing.SupportsIndex = 0.2) -> float:
    """
    Effective core clock in GHz with `threads` threads busy (dependent integer adds, one cycle each).
    """
def probe_fma_peak(threads: typing.SupportsInt | typing.SupportsIndex = 0, simd: str = 'auto', seconds: typing.SupportsFloat | typing.SupportsIndex = 0.5) -> float:
    """
    FMA peak in GFLOP/s: a register-resident fma loop on every thread (best of 3 timed runs).
    """
def probe_triad(threads: typing.SupportsInt | typing.SupportsIndex, elements: typing.SupportsInt | typing.SupportsIndex, repeats: typing.SupportsInt | typing.SupportsIndex = 10, simd: str = 'auto') -> dict:
    """
    STREAM triad bandwidth in GB/s (best run; 12 bytes per element) over arrays of `elements` floats.
    """
def round_to(arg0: typing.Any, arg1: str) -> numpy.typing.NDArray[numpy.float32]:
    ...
def set_gemm_tuning(tile_l2_eighths: typing.SupportsInt | typing.SupportsIndex, traversal: typing.SupportsInt | typing.SupportsIndex, min_work_log2: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Sets the GEMM's scheduling parameters for the next GEMMs (ArgumentError out of range).
    """
def simd_level() -> str:
    ...
def simd_levels() -> list[str]:
    ...
def time_callable(fn: collections.abc.Callable, policy: TimerPolicy, sample: typing.Any = None) -> dict:
    """
    The timer around fn() (a Python callable, called with the GIL); sample(calls), when given, times a block of calls itself and returns its nanoseconds, or (ns, rejected).
    """
def timer_replay(policy: TimerPolicy, call_ns: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], clock_read_ns: typing.SupportsFloat | typing.SupportsIndex = 0.0, rejected: collections.abc.Sequence[bool] = []) -> dict:
    """
    The timer on planted call durations and a fake clock (for tests).
    """
__version__: str = '0.1.0'
testing: ModuleType
