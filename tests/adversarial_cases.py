"""The adversarial suite's cases: bad input, hostile settings, damaged files and faults, each with what it
must end in: a named batchcore error, or "ok" (the code's own asserts check the result is right).

Every case runs in a fresh child process with a timeout (tests/test_adversarial.py), so a crash, a
hang, a raw Python exception or a silent acceptance of invalid input each fail it. Names available to
a case: bc, np, os, json, tmp (an empty folder), M (a 16-8-4 MLP), X (4 x 16 float32 rows), Q (a
quick Timer).
"""

CASES = {}


def case(name: str, expected: str, code: str) -> None:
    assert name not in CASES, name
    CASES[name] = (expected, code)


def cases(prefix: str, expected: str, template: str, values: dict) -> None:
    """One case per value: ``template`` with ``{v}`` replaced by the value's source text."""
    for label, v in values.items():
        case(f"{prefix}[{label}]", expected, template.replace("{v}", v))


# -- models: mlp ---------------------------------------------------------------------------------------
cases("mlp_sizes", "ShapeError", "bc.mlp({v})", {
    "None": "None", "int": "5", "str": "'784,10'", "empty": "[]", "one": "[8]", "zero": "[8, 0]",
    "negative": "[8, -1]", "float": "[8, 2.7]", "str_item": "[8, '3']", "bool": "[8, True]",
    "nan": "[8, float('nan')]", "inf": "[8, float('inf')]", "abc": "[8, 'abc']", "none_item": "[8, None]",
    "float_whole": "[8.0, 4]",
})
cases("mlp_too_large", "OutOfMemoryError", "bc.mlp({v})", {
    "2**62": "[8, 2**62]", "10**6x2": "[10**6, 10**6]", "2**40x3": "[2**40, 2**40, 4]",
})
cases("mlp_seed", "ArgumentError", "bc.mlp([8, 4], seed={v})", {
    "negative": "-1", "float": "1.5", "str": "'x'", "bool": "True", "none": "None",
})
cases("mlp_activation", "UnsupportedLayerError", "bc.mlp([8, 4, 2], activation={v})", {
    "swish": "'swish'", "none": "None", "int": "3",
})
case("mlp_head", "UnsupportedLayerError", "bc.mlp([8, 4], head='sigmoid')")
case("mlp_name", "ArgumentError", "bc.mlp([8, 4], name=5)")
case("mlp_numpy_ints", "ok", """
m = bc.mlp([np.int64(16), np.int32(4)], seed=np.int64(3))
assert m.input_width == 16 and m.output_width == 4
y = bc.native().run(m, X)
assert y.shape == (4, 4) and y.dtype == np.float32""")
case("mlp_tuple", "ok", "assert bc.mlp((16, 4)).output_width == 4")

# -- models: Model and Layer made by hand ------------------------------------------------------------------
case("model_no_layers", "ShapeError", "bc.Model([], 4)")
case("model_layers_none", "ShapeError", "bc.Model(None, 4)")
case("model_not_a_layer", "UnsupportedLayerError", "bc.Model([5], 4)")
case("model_unknown_kind", "UnsupportedLayerError", "bc.Model([bc.Layer('conv')], 4)")
case("model_width_mismatch", "ShapeError",
     "bc.Model([bc.Layer('linear', {'weight': np.ones((3, 5), np.float32), 'bias': None})], 4)")
case("model_weight_none", "ShapeError", "bc.Model([bc.Layer('linear', {'weight': None, 'bias': None})], 4)")
case("model_weight_missing", "ShapeError", "bc.Model([bc.Layer('linear', {})], 4)")
case("model_weight_float64", "DTypeError", "bc.Model([bc.Layer('linear', {'weight': np.ones((3, 4)), 'bias': None})], 4)")
case("model_bias_shape", "ShapeError",
     "bc.Model([bc.Layer('linear', {'weight': np.ones((3, 4), np.float32), 'bias': np.ones(4, np.float32)})], 4)")
case("model_input_width_zero", "ShapeError", "bc.Model([bc.Layer('relu')], 0)")
case("model_input_width_float", "ShapeError", "bc.Model([bc.Layer('relu')], 2.5)")
case("model_layer_norm_params", "ShapeError", "bc.Model([bc.Layer('layer_norm', {'weight': np.ones(3, np.float32)})], 3)")
case("model_layer_norm_eps", "ShapeError", """
one = np.ones(3, np.float32)
bc.Model([bc.Layer('layer_norm', {'weight': one, 'bias': one, 'eps': float('nan')})], 3)""")
case("model_nan_weight", "NonFiniteError", """
w = np.ones((3, 4), np.float32); w[1, 2] = np.nan
m = bc.Model([bc.Layer('linear', {'weight': w, 'bias': None})], 4)
bc.native().run(m, np.ones((2, 4), np.float32))""")

# -- models: from_torch --------------------------------------------------------------------------------
TORCH = "import torch\nnn = torch.nn\n"
cases("from_torch_unsupported", "UnsupportedLayerError", TORCH + "bc.from_torch({v})", {
    "None": "None", "conv": "nn.Conv2d(3, 4, 3)", "empty": "nn.Sequential()",
    "gelu_tanh": "nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate='tanh'))",
    "softmax_dim0": "nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0))",
    "no_width": "nn.Sequential(nn.ReLU())", "lstm": "nn.LSTM(4, 4)",
})
cases("from_torch_dtype", "DTypeError", TORCH + "bc.from_torch(nn.Sequential(nn.Linear(4, 3)).{v}())", {
    "fp16": "half", "fp64": "double", "bf16": "bfloat16",
})
case("from_torch_nan", "NonFiniteError", TORCH + """
lin = nn.Linear(4, 3)
with torch.no_grad():
    lin.weight[0, 0] = float('nan')
bc.from_torch(nn.Sequential(lin))""")
case("from_torch_width_mismatch", "ShapeError",
     TORCH + "bc.from_torch(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2)))")
case("from_torch_model_runs_on_every_backend", "ok", TORCH + """
torch.manual_seed(0)
mod = nn.Sequential(nn.Linear(16, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 3), nn.Softmax(dim=-1))
m = bc.from_torch(mod)
with torch.no_grad():
    ref = mod(torch.from_numpy(X)).numpy()
for b in (bc.native(), bc.numpy(), bc.torch(measure_memory=False)):
    assert np.allclose(b.run(m, X), ref, rtol=1e-4, atol=1e-6), b.label""")
case("torch_parameters_stay_private", "ok", TORCH + """
mod = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
m = bc.from_torch(mod)
bc.torch(threads=1).measure(m, X, Q)
assert not any(p.is_shared() for p in mod.parameters())""")

# -- inputs ---------------------------------------------------------------------------------------------
BAD_INPUTS = {
    "None": ("DTypeError", "None"), "list": ("DTypeError", "X.tolist()"), "float64": ("DTypeError", "X.astype(np.float64)"),
    "int32": ("DTypeError", "X.astype(np.int32)"), "1d": ("ShapeError", "X[0].copy()"),
    "3d": ("ShapeError", "X[None].copy()"), "empty": ("ShapeError", "X[:0].copy()"),
    "columns": ("ShapeError", "np.ones((4, 15), np.float32)"), "fortran": ("DTypeError", "np.asfortranarray(X)"),
    "strided": ("DTypeError", "np.ones((4, 32), np.float32)[:, ::2]"),
    "nan": ("NonFiniteError", "np.where(np.arange(64).reshape(4, 16) == 37, np.float32(np.nan), X)"),
    "inf": ("NonFiniteError", "np.full((4, 16), np.inf, np.float32)"),
    "neg_inf": ("NonFiniteError", "np.full((4, 16), -np.inf, np.float32)"),
    "nan_last": ("NonFiniteError", "np.concatenate([X[:, :15], np.full((4, 1), np.nan, np.float32)], axis=1)"),
}
for backend in ("native()", "numpy()", "torch(measure_memory=False)"):
    short = backend.split("(")[0]
    for label, (expected, value) in BAD_INPUTS.items():
        if short == "torch" and label in ("int32", "3d", "fortran", "neg_inf"):
            continue  # the same check in the same place; keep the suite's time for other classes
        case(f"input_{short}[{label}]", expected, f"bc.{backend}.run(M, {value})")
case("input_model_none", "ArgumentError", "bc.native().run(None, X)")
case("input_model_torch_module", "ArgumentError", TORCH + "bc.native().run(nn.Linear(16, 4), X)")
case("input_subnormals_keep_their_bits", "ok", """
x = np.full((4, 16), 1e-40, np.float32)
alone = bc.native().run(M, x[:1])
assert np.array_equal(alone.view(np.uint32), bc.native().run(M, x)[:1].view(np.uint32))""")
case("input_huge_finite_values", "ok", """
x = np.full((4, 16), 3e38, np.float32)
y = bc.native().run(M, x)  # the softmax-free MLP overflows to inf; no error, no crash
assert y.shape == (4, 4)""")

# -- batch sizes ------------------------------------------------------------------------------------------
cases("run_batched_size", "ShapeError", "bc.native().run_batched(M, X, {v})", {
    "zero": "0", "negative": "-3", "float": "2.5", "bool": "True", "str": "'4'", "none": "None", "2**63": "2**63",
})
case("run_batched_past_the_data", "ok", """
a, b = bc.native().run_batched(M, X, 2**40), bc.native().run(M, X)
assert np.array_equal(a.view(np.uint32), b.view(np.uint32))""")
case("run_batched_numpy_int", "ok", "assert bc.numpy().run_batched(M, X, np.int64(3)).shape == (4, 4)")

# -- backends' settings -------------------------------------------------------------------------------------
cases("native_order", "OrderError", "bc.native(order={v})", {
    "None": "None", "int": "5", "empty": "''", "chunk0": "'chunk:0'", "chunk_neg": "'chunk:-1'",
    "chunk_abc": "'chunk:abc'", "lanes3": "'lanes:3'", "splitk0": "'splitk:0'",
    "chunk_overflow": "'chunk:99999999999999999999'", "upper": "'SEQ'", "space": "' seq'",
})
cases("native_precision", "OrderError", "bc.native(precision={v})", {"fp8": "'fp8'", "None": "None", "int": "16"})
cases("native_policy", "OrderError", "bc.native(policy={v})", {"unknown": "'gpu-like'", "int": "5"})
cases("native_threads", "ArgumentError", "bc.native(threads={v})", {
    "zero": "0", "negative": "-1", "2**31": "2**31", "100000": "100000", "1025": "1025", "float": "1.5",
    "str": "'2'", "bool": "True",
})
case("native_threads_numpy_int", "ok", "assert bc.native(threads=np.int64(2)).run(M, X).shape == (4, 4)")
cases("native_device", "DeviceUnavailableError", "bc.native(device={v})", {
    "tpu": "'tpu'", "cuda99": "'cuda:99'", "None": "None", "int": "0", "cuda_x": "'cuda:x'",
})
cases("native_simd", "DeviceUnavailableError", "bc.native(simd={v})", {"avx1024": "'avx1024'", "None": "None"})
cases("torch_settings", "DeviceUnavailableError", "bc.torch({v})", {
    "tpu": "device='tpu'", "tf32_cpu": "tf32=True", "cuda99": "device='cuda:99'",
})
cases("torch_flags", "ArgumentError", "bc.torch({v})", {
    "threads0": "threads=0", "memory_str": "measure_memory='yes'", "tf32_str": "tf32='yes'",
})
MISSING = """import sys, importlib.abc
class NotInstalled(importlib.abc.MetaPathFinder):  # as if the package were not installed
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == {v}:
            raise ModuleNotFoundError(f"No module named {name!r}")
assert {v} not in sys.modules
sys.meta_path.insert(0, NotInstalled())
"""
case("torch_missing", "MissingDependencyError", MISSING.replace("{v}", "'torch'") + "bc.torch()")
case("torch_missing_from_torch", "MissingDependencyError", MISSING.replace("{v}", "'torch'") + "bc.from_torch(object())")
case("torch_missing_default_backends", "ok", MISSING.replace("{v}", "'torch'") + """
res = bc.sweep(M, [1, 2], timer=Q, ceilings=False)
assert {p['backend'] for p in res.points} == {'native[seq]', 'numpy'}""")
case("cupy_missing", "MissingDependencyError", MISSING.replace("{v}", "'cupy'") + "bc.cupy()")
case("keras_missing", "MissingDependencyError", MISSING.replace("{v}", "'keras'") + "bc.keras()")
case("keras_missing_from_keras", "MissingDependencyError", MISSING.replace("{v}", "'keras'") + "bc.from_keras(object())")
case("onnxruntime_missing", "MissingDependencyError", MISSING.replace("{v}", "'onnxruntime'") + "bc.onnx()")
case("onnx_missing_model", "MissingDependencyError", MISSING.replace("{v}", "'onnx'") +
     "bc.sweep('model.onnx', [1], [bc.native()], data=np.ones((2, 3), np.float32))")
case("onnx_flags", "ArgumentError", "bc.onnx(optimization='max')")
case("jax_missing", "MissingDependencyError", MISSING.replace("{v}", "'jax'") + "bc.jax()")
case("jax_missing_model", "MissingDependencyError", MISSING.replace("{v}", "'jax'") + "bc.jax_model(lambda p, x: x, {})")
case("onnx_gpu", "DeviceUnavailableError", "bc.onnx(device='cuda')")

# -- timer ------------------------------------------------------------------------------------------------
cases("timer_setting", "ArgumentError", "bc.Timer({v}).policy()", {
    "target0": "target=0", "target_neg": "target=-1", "target_nan": "target=float('nan')", "target_str": "target='1%'",
    "confidence1": "confidence=1", "confidence0": "confidence=0", "min_samples0": "min_samples=0",
    "min_samples_float": "min_samples=2.5", "min_samples_bool": "min_samples=True", "min_samples_2**40": "min_samples=2**40",
    "timeout0": "timeout_s=0", "timeout_inf": "timeout_s=float('inf')", "warmup_neg": "warmup_s=-1",
    "warmup_over_timeout": "warmup_s=1e9, timeout_s=1", "min_time_over_timeout": "min_time_s=20, timeout_s=15",
    "overhead_1e-12": "overhead_frac=1e-12", "overhead_1e-300": "overhead_frac=1e-300", "overhead_1": "overhead_frac=1",
    "max_samples_low": "max_samples=2", "max_samples_huge": "max_samples=10**12", "warmup_calls0": "warmup_calls=0",
    "none": "target=None",
})
cases("timer_measure", "ArgumentError", "bc.Timer().measure({v})", {"int": "42", "None": "None", "str": "'f'"})
case("timer_measure_sample_not_callable", "ArgumentError", "bc.Timer().measure(lambda: None, sample=5)")
case("timer_smallest_overhead_frac_ends", "ok", """
import time
t0 = time.monotonic()
m = bc.Timer(overhead_frac=1e-7, timeout_s=1, min_time_s=0).measure(lambda: None)
assert time.monotonic() - t0 < 5 and m.calls_per_sample >= 1 and m.median_ms > 0""")
case("timer_endless_warmup_ends", "ok", """
import time
t0 = time.monotonic()
m = bc.Timer(warmup_calls=10**9, timeout_s=0.3, min_time_s=0).measure(lambda: None)
assert time.monotonic() - t0 < 5 and m.samples >= 1""")
# Calls of random lengths (0.5-50 us): samples of a call of a fixed ~1 us were so often equal at the clock's 1 ns
# that the median's interval collapsed to a point, "meeting" even a 1e-9 target (1 run in 30)
case("timer_unreachable_target_times_out", "ok", """
import random
m = bc.Timer(target=1e-9, timeout_s=0.3, min_time_s=0).measure(lambda: sum(range(random.randrange(100, 5000))))
assert m.timed_out and not m.target_met, m""")
case("measure_timer_not_a_timer", "ArgumentError", "bc.native().measure(M, X, timer=5)")
case("measure_cold_not_a_flag", "ArgumentError", "bc.numpy().measure(M, X, Q, cold='yes')")

# -- sweep ------------------------------------------------------------------------------------------------
SWEEP = "bc.sweep(M, [1, 2], [bc.native()], timer=Q, ceilings=False, {v})"
case("sweep_model_none", "ArgumentError", "bc.sweep(None)")
case("sweep_model_str", "ArgumentError", "bc.sweep('mlp')")
case("sweep_unreadable_module_on_native_says_why", "ok", TORCH + """
try:
    bc.sweep(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2, mode="bilinear")), [1], [bc.native()],
             data=np.zeros((2, 1, 4, 4), np.float32), timer=Q)
except bc.ArgumentError as e:
    assert 'bc.from_torch does not read it' in str(e) and 'Upsample' in str(e) and 'bc.torch()' in str(e), e
else:
    raise AssertionError('native accepted a module from_torch cannot read')""")
case("sweep_module_raising_is_a_module_error", "ModuleError", TORCH +
     "bc.sweep(nn.Linear(3, 2), [1], [bc.torch()], data=np.zeros((2, 5), np.float32), timer=Q)")
cases("sweep_batch_sizes", "ShapeError", "bc.sweep(M, {v}, [bc.native()], timer=Q, ceilings=False)", {
    "None": "None", "empty": "[]", "zero": "[0]", "float": "[2.5]", "str": "'1,2'", "bool": "[True]", "int": "8",
})
cases("sweep_batch_too_large", "OutOfMemoryError", "bc.sweep(M, {v}, [bc.native()], timer=Q, ceilings=False)", {
    "10**9": "[10**9]", "2**63": "[2**63]",
})
case("sweep_batch_past_rows", "ShapeError", "bc.sweep(M, [4096], [bc.native()], rows=100, timer=Q, ceilings=False)")
case("sweep_batch_past_data", "ShapeError", "bc.sweep(M, [8], [bc.native()], data=X, timer=Q, ceilings=False)")
case("sweep_backends_empty", "ArgumentError", "bc.sweep(M, [1], [], timer=Q)")
cases("sweep_backends", "ArgumentError", "bc.sweep(M, [1], {v}, timer=Q, ceilings=False)", {
    "none_item": "[None]", "not_a_list": "bc.native()", "str": "'native'", "duplicate": "[bc.native(), bc.native()]",
    "int": "5",
})
case("sweep_timer", "ArgumentError", "bc.sweep(M, [1, 2], [bc.native()], timer=5, ceilings=False)")
case("sweep_ceilings", "ArgumentError", "bc.sweep(M, [1, 2], [bc.native()], timer=Q, ceilings='no')")
case("sweep_rounds", "ArgumentError", "bc.sweep(M, [1, 2], [bc.native()], timer=Q, ceilings=False, rounds=0)")
cases("sweep_setting", "ArgumentError", SWEEP, {
    "seed": "seed=-1", "cold": "cold='yes'", "data_and_rows": "data=X, rows=4",
})
cases("sweep_rows", "ShapeError", SWEEP, {"zero": "rows=0", "float": "rows=2.5"})
cases("sweep_labels", "ShapeError", "bc.sweep(M, [1, 2], [bc.native()], data=X, timer=Q, ceilings=False, labels={v})", {
    "shape": "np.zeros(3, int)", "float": "np.zeros(4)",
})
case("sweep_data_nan", "NonFiniteError", "bc.sweep(M, [1], [bc.native()], data=np.full((4, 16), np.nan, np.float32), timer=Q)")
case("sweep_data_float64", "DTypeError", "bc.sweep(M, [1], [bc.native()], data=X.astype(np.float64), timer=Q)")
case("sweep_device", "DeviceUnavailableError", "bc.sweep(M, [1], device='tpu', timer=Q)")

# -- result files -------------------------------------------------------------------------------------------
case("out_is_a_directory", "ResultFileError", SWEEP.replace("{v}", "out=tmp"))
case("out_missing_parent", "ResultFileError", SWEEP.replace("{v}", "out=os.path.join(tmp, 'no', 'such.jsonl')"))
case("out_of_another_sweep", "ResultFileError", """
p = os.path.join(tmp, 'log.jsonl')
bc.sweep(M, [1], [bc.native()], timer=Q, ceilings=False, out=p)
bc.sweep(bc.mlp([16, 4], seed=1), [1], [bc.native()], timer=Q, ceilings=False, out=p)""")
case("out_of_garbage", "ResultFileError", """
p = os.path.join(tmp, 'log.jsonl')
open(p, 'w').write('hello\\nworld\\n')
bc.sweep(M, [1], [bc.native()], timer=Q, ceilings=False, out=p)""")
case("out_torn_inside_the_header_starts_again", "ok", """
p = os.path.join(tmp, 'log.jsonl')
open(p, 'w').write('{"type": "header", "config": {"mo')  # a full disk or a power cut mid-header
res = bc.sweep(M, [1, 2], [bc.native()], timer=Q, ceilings=False, out=p)
again = bc.SweepResult.from_json(p)
assert len(res.points) == len(again.points) == 2""")
case("out_torn_last_point_resumes_without_duplicates", "ok", """
p = os.path.join(tmp, 'log.jsonl')
bc.sweep(M, [1, 2, 3], [bc.native()], timer=Q, ceilings=False, out=p)
data = open(p, 'rb').read()
open(p, 'wb').write(data[:-40])  # the last point's line torn
res = bc.sweep(M, [1, 2, 3], [bc.native()], timer=Q, ceilings=False, out=p)
sizes = [q['batch_size'] for q in bc.SweepResult.from_json(p).points]
assert sorted(sizes) == [1, 2, 3] and [q['batch_size'] for q in res.points] == sizes""")
case("overflowing_outputs_lose_no_point", "ok", """
p, j = os.path.join(tmp, 'log.jsonl'), os.path.join(tmp, 'res.json')
m = bc.mlp([16, 64, 4], seed=0)
res = bc.sweep(m, [1, 2], [bc.native(), bc.numpy()], data=np.full((4, 16), 3e38, np.float32), timer=Q,
               ceilings=False, out=p)
res.to_json(j)
assert len(bc.SweepResult.from_json(p).points) == len(bc.SweepResult.from_json(j).points) == 4
assert all(q['nonfinite_outputs'] > 0 for q in res.points)""")
FILE = "p = os.path.join(tmp, 'f.json')\nopen(p, 'wb').write({v})\nbc.SweepResult.from_json(p)"
cases("from_json", "ResultFileError", FILE, {
    "empty": "b''", "empty_object": "b'{}'", "text": "b'hello'", "points_int": "b'{\"points\": 5}'",
    "points_of_ints": "b'{\"points\": [5]}'", "binary": "bytes(range(256))", "list": "b'[1, 2]'", "number": "b'42'",
    "point_without_backend": "b'{\"points\": [{\"batch_size\": 1}]}'",
    "env_not_object": "b'{\"points\": [], \"env\": 5}'",
    "jsonl_list_line": "b'{\"type\": \"header\", \"config\": {}}\\n[1, 2]\\n'",
    "jsonl_number_line": "b'{\"type\": \"header\", \"config\": {}}\\n42\\n'",
    "jsonl_point_without_backend": "b'{\"type\": \"header\", \"config\": {}}\\n{\"type\": \"point\", \"batch_size\": 1}\\n'",
    "jsonl_two_headers": "b'{\"type\": \"header\"}\\n{\"type\": \"header\"}\\n'",
    "jsonl_point_first": "b'{\"type\": \"point\", \"backend\": \"b\", \"batch_size\": 1}\\n'",
    "jsonl_bad_middle": "b'{\"type\": \"header\"}\\nnot json\\n{\"type\": \"header\"}\\n'",
    "jsonl_header_torn": "b'{\"type\": \"hea'",
})
case("from_json_missing", "ResultFileError", "bc.SweepResult.from_json(os.path.join(tmp, 'missing.json'))")
case("from_json_directory", "ResultFileError", "bc.SweepResult.from_json(tmp)")
case("compare_missing", "ResultFileError", "bc.compare(os.path.join(tmp, 'a.json'), os.path.join(tmp, 'b.json'))")
case("compare_not_results", "ArgumentError", "bc.compare(5, 6)")
case("compare_min_change", "ArgumentError", "bc.compare(bc.SweepResult([]), bc.SweepResult([]), min_change=-1)")
RESULT = "res = bc.sweep(M, [1], [bc.native()], timer=Q, ceilings=False)\n"
case("to_json_directory", "ResultFileError", RESULT + "res.to_json(tmp)")
case("to_json_missing_parent", "ResultFileError", RESULT + "res.to_json(os.path.join(tmp, 'no', 'r.json'))")
case("to_csv_missing_parent", "ResultFileError", RESULT + "res.to_csv(os.path.join(tmp, 'no', 'r.csv'))")
case("to_json_respects_the_umask", "ok", RESULT + """
os.umask(0o022)
res.to_json(os.path.join(tmp, 'r.json')); res.to_csv(os.path.join(tmp, 'r.csv'))
assert {os.stat(os.path.join(tmp, f)).st_mode & 0o777 for f in ('r.json', 'r.csv')} == {0o644}
assert not [f for f in os.listdir(tmp) if f.startswith('.batchcore-')]  # no temporary file left""")
case("to_json_non_finite_numbers_become_null", "ok", RESULT + """
res.points[0]['time_ms_mean'] = float('nan')
p = os.path.join(tmp, 'r.json')
res.to_json(p)
assert bc.SweepResult.from_json(p).points[0]['time_ms_mean'] is None""")

# -- decisions --------------------------------------------------------------------------------------------
DECIDE = "res = bc.sweep(M, [1, 2, 4], [bc.native()], timer=Q, ceilings=False)\n"
cases("best_batch", "ArgumentError", DECIDE + "res.best_batch({v})", {
    "zero": "latency_ms=0", "str": "latency_ms='5'", "nan": "latency_ms=float('nan')",
    "metric": "latency_ms=5, metric='p50'", "backend": "latency_ms=5, backend='nope'",
})
cases("knee", "ArgumentError", DECIDE + "res.knee({v})", {"zero": "gain=0", "bool": "gain=True", "str": "gain='5%'"})
case("knee_none_in_range", "ok", """
from batchcore.results.decisions import knee
pts = [{'backend': 'b', 'batch_size': B, 'time_ms': 1.0, 'time_ms_ci_low': 0.99, 'time_ms_ci_high': 1.01}
       for B in (1, 2, 4, 8)]  # the same time at every B: each doubling doubles the throughput
k = knee(pts)
assert k.batch_size is None and k.sure and k.between == (None, None) and 'no knee' in k.reason""")

# -- largest_batch ---------------------------------------------------------------------------------------
cases("largest_batch", "ArgumentError", "bc.largest_batch({v})", {
    "budget0": "M, bc.native(), budget_bytes=0", "budget_neg": "M, bc.native(), budget_bytes=-5",
    "budget_float": "M, bc.native(), budget_bytes=1.5", "start0": "M, bc.native(), 2**20, start=0",
    "start_past_max": "M, bc.native(), 2**20, start=8, max_batch=4", "numpy": "M, bc.numpy(), 2**20",
    "no_budget_cpu": "M, bc.native()", "model_none": "None, bc.native(), 2**20", "backend_none": "M, None, 2**20",
})
case("largest_batch_budget_too_small", "OutOfMemoryError", "bc.largest_batch(M, bc.native(), budget_bytes=64)")
case("largest_batch_budget_2**40", "ok", """
# A terabyte budget on a machine with 256 MiB to spare (the check is the one numpy's allocation used to
# meet as a raw MemoryError): every pass past the memory that can be had counts as not fitting.
bc.checks.available_memory_bytes = lambda: 256 << 20
m = bc.mlp([784, 128, 10], seed=0)
r = bc.largest_batch(m, bc.native(), budget_bytes=2**40)
assert 1 <= r.batch_size and 4 * 784 * r.batch_size <= 256 << 20 and not r.capped
assert any(not fitted for _, fitted, _ in r.steps)""")

# -- orders.dot and round_to ----------------------------------------------------------------------------------
A = "a = np.arange(1, 9, dtype=np.float32); b = np.ones(8, np.float32)\n"
cases("dot", "OrderError", A + "bc.orders.dot(a, b, {v})", {
    "order_none": "order=None", "order_int": "order=3", "precision": "precision='fp8'", "precision_none": "precision=None",
})
cases("dot_input", "DTypeError", A + "bc.orders.dot({v})", {
    "list": "[1.0], [1.0]", "float64": "a.astype(np.float64), b", "c_str": "a, b, c='x'", "c_inexact": "a, b, c=0.1",
    "c_none": "a, b, c=None",
})
cases("dot_shape", "ShapeError", A + "bc.orders.dot({v})", {"lengths": "a, b[:7].copy()", "empty": "a[:0].copy(), b[:0].copy()"})
case("dot_nan", "NonFiniteError", A + "a[3] = np.nan\nbc.orders.dot(a, b)")
case("dot_exact_is_correctly_rounded", "ok", """
from fractions import Fraction
rng = np.random.default_rng(5)
a = rng.standard_normal(64).astype(np.float32); b = rng.standard_normal(64).astype(np.float32)
exact = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a, b))
got = bc.orders.dot(a, b, order='exact')
lo, hi = np.nextafter(got, np.float32(-np.inf)), np.nextafter(got, np.float32(np.inf))
assert abs(Fraction(float(got)) - exact) <= min(abs(Fraction(float(lo)) - exact), abs(Fraction(float(hi)) - exact))""")
case("round_to_list", "DTypeError", "bc.orders.round_to([1.0], 'bf16')")
case("round_to_precision", "OrderError", "bc.orders.round_to(np.ones(3, np.float32), 'fp4')")

# -- probes ----------------------------------------------------------------------------------------------
cases("probe", "ArgumentError", "bc.probe({v})", {"threads0": "threads=0", "threads_2**31": "threads=2**31",
                                                  "refresh": "refresh='yes'"})
case("probe_device", "DeviceUnavailableError", "bc.probe(device='tpu')")

# -- threads and faults ------------------------------------------------------------------------------------------
case("failed_thread_start_raises_and_the_pool_still_works", "ok", """
import resource
# Under an address-space limit near what is mapped now, 1000 thread stacks (8 MiB each) cannot be made.
with open('/proc/self/status') as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmSize:'))
resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), resource.RLIM_INFINITY))
try:
    bc.native(threads=1000).run(M, X)
except bc.OutOfMemoryError as e:
    assert 'thread' in str(e)
else:
    raise AssertionError('1000 threads started under the limit')
assert bc.native(threads=2).run(M, X).shape == (4, 4)  # the workers that did start are still usable""")
case("pools_are_bounded_and_reused", "ok", """
def tasks():
    return len(os.listdir('/proc/self/task'))
bc.native(threads=1).run(M, X)
base = tasks()
for t in range(1, 41):
    bc.native(threads=t).run(M, np.ones((64, 16), np.float32))
assert tasks() <= base + 39, tasks()  # one pool of 40: 39 workers besides the caller
for t in range(1, 41):
    bc.native(threads=t).run(M, X)
assert tasks() <= base + 39""")
case("outputs_identical_across_thread_counts", "ok", """
x = np.random.default_rng(1).standard_normal((300, 16), dtype=np.float32)
ref = bc.native(threads=1).run(M, x)
for t in (2, 3, 7, 16):
    assert np.array_equal(bc.native(threads=t).run(M, x).view(np.uint32), ref.view(np.uint32)), t""")

# -- plots, the report, the studies ---------------------------------------------------------------------
case("plot_suffix", "ArgumentError", "bc.SweepResult([{'backend': 'x', 'batch_size': 1}]).plot(os.path.join(tmp, 'a.jpeg'))")
case("plot_budget", "ArgumentError", "bc.SweepResult([]).plot(os.path.join(tmp, 'a.png'), budget_bytes='1 MiB')")
case("plot_into_a_folder", "ResultFileError", """
r = bc.sweep(M, batch_sizes=[1], backends=[bc.native()], rows=4, timer=Q, rounds=1, ceilings=False)
r.plot(os.path.join(tmp, 'missing', 'a.png'))""")
case("report_no_files", "ArgumentError", "from batchcore import report; report.render([])")
case("report_missing_file", "ResultFileError",
     "from batchcore import report; report.render([os.path.join(tmp, 'none.json')])")
case("report_foreign_json", "ResultFileError", """
p = os.path.join(tmp, 'f.json'); open(p, 'w').write('[1, 2]')
from batchcore import report; report.render([p])""")
case("report_study_without_name", "ResultFileError", """
p = os.path.join(tmp, 's.json'); open(p, 'w').write(json.dumps({'type': 'study', 'env': {}}))
from batchcore import report; report.render([p])""")
case("report_unwritable", "ResultFileError", """
log = os.path.join(tmp, 'r.jsonl')
bc.sweep(M, batch_sizes=[1], backends=[bc.native()], rows=4, timer=Q, rounds=1, ceilings=False, out=log)
from batchcore import report; report.write([log], os.path.join(tmp, 'no', 'r.html'))""")
case("sweep_progress", "ArgumentError", "bc.sweep(M, batch_sizes=[1], backends=[bc.native()], rows=4, timer=Q, progress='yes')")
cases("accuracy_study_labels", "ShapeError", "bc.studies.accuracy(M, X, {v}, backends=[bc.native()])", {
    "short": "np.zeros(3, np.int64)", "float": "np.zeros(4)", "2d": "np.zeros((4, 1), np.int64)",
})
case("accuracy_study_nan", "NonFiniteError",
     "x = X.copy(); x[0, 0] = np.nan; bc.studies.accuracy(M, x, np.zeros(4, np.int64), backends=[bc.native()])")
case("accuracy_study_sizes", "ShapeError",
     "bc.studies.accuracy(M, X, np.zeros(4, np.int64), batch_sizes=[0], backends=[bc.native()])")
case("evaluation_study_backends", "ArgumentError", "bc.studies.evaluation(M, X, np.zeros(4, np.int64), backends=['torch'])")
cases("deployment_study_settings", "ArgumentError", "bc.studies.deployment(M, X, backend=bc.native(), {v})", {
    "rate": "rate_per_s=0", "budget": "p99_budget_ms=float('nan')", "delay": "max_delays_ms=(-1,)",
    "validate": "validate='some', service_samples=2, requests=5, max_batch_sizes=(1,)",
    "requests": "requests=0",
})

# -- what a new user hit (issue 27) ---------------------------------------------------------------------------
cases("sweep_labels_out_of_range", "ShapeError", "bc.sweep(M, [1], [bc.native()], rows=4, timer=Q, ceilings=False, labels={v})", {
    "seven": "np.array([0, 1, 2, 7])", "minus_one": "np.array([0, -1, 2, 3])",
})
case("sweep_labels_out_of_range_names_the_label", "ok", """
try:
    bc.sweep(M, [1], [bc.native()], rows=4, timer=Q, ceilings=False, labels=np.array([0, 1, 2, 7]))
except bc.ShapeError as e:
    assert 'classes 0..3' in str(e) and 'found 7' in str(e), e
else:
    raise AssertionError('a label of 7 for 4 classes was accepted')""")
case("sweep_list_data_for_a_module_blames_the_data", "DTypeError", TORCH +
     "bc.sweep(nn.Sequential(nn.Conv2d(1, 2, 3)), [1], [bc.native()], data=[[1.0, 2.0]], timer=Q)")
case("largest_batch_under_an_address_space_limit", "ok", """
import resource
# 3 GiB more than is mapped now: the search must find where passes stop fitting, never raise numpy's MemoryError
with open('/proc/self/status') as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmSize:'))
resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))
found = bc.largest_batch(bc.mlp([784, 10], seed=0), bc.native(threads=1), budget_bytes=2**40)
assert 2**14 < found.batch_size < 2**21, found.batch_size
assert any(not ok for _, ok, _ in found.steps)  # some probe did not fit""")
