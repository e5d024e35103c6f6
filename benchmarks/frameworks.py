"""One trained digits CNN in PyTorch, Keras/TensorFlow, ONNX Runtime, JAX, NumPy and batchcore's native core: what
each does with the batch size, side by side, from one run (the README's table).

The CNN of the studies (two 3x3 convolutions of 16 and 32 channels with ReLU and 2x2 max pooling, a linear
layer to 10 classes) is trained in PyTorch on scikit-learn's bundled digits, then copied weight for weight
into the same Keras model (kernels OIHW -> HWIO; the last layer's rows reordered from torch's
channels-first flattening to Keras's channels-last one). Validated first: the Keras twin's outputs agree
with torch's to float32 rounding. Then each framework's sweep over the 450 held-out digits: torch (and
NumPy's pass over the graph read from the module, and the native core reading it), Keras's predict and
call (and the native core reading the Keras model), ONNX Runtime on the module exported by
bc.export_onnx with its default options, its graph optimisations off and its deterministic compute on (and
the native core reading the ONNX file), and the same CNN written as a JAX function of the torch weights,
jitted and op by op (validated like the Keras twin); per backend its invariance classes, the least share
of bits equal to B=1's, the largest ULP distance to B=1 and to the exactly rounded result, argmax flips
(and how many of them rounding explains), the outputs beyond rounding's reach of the exactly rounded result
(a backend computing in less precision than float32 would show here), and the median time per batch.
Last: which of them give the same bits at B=1, and (full run) each runtime's switches on the same CNN
(bc.studies.switches): TensorFlow's oneDNN and op determinism, ONNX Runtime's graph optimisations and
deterministic compute, XLA's CPU flags.

    python benchmarks/frameworks.py            # the table (a few minutes)
    python benchmarks/frameworks.py --quick    # smoke test for CI (asserts nothing about speed)
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import batchcore as bc  # noqa: E402
from batchcore.studies import digits  # noqa: E402


def keras_twin(net: torch.nn.Module) -> keras.Model:
    """The same CNN in Keras, with the torch module's weights."""
    conv1, conv2, linear = net[0], net[3], net[7]
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                              L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Flatten(),
                              L.Dense(10)], name="digits_cnn")

    def np_(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy()

    model.layers[0].set_weights([np_(conv1.weight).transpose(2, 3, 1, 0), np_(conv1.bias)])
    model.layers[2].set_weights([np_(conv2.weight).transpose(2, 3, 1, 0), np_(conv2.bias)])
    w = np_(linear.weight).reshape(10, 32, 2, 2).transpose(2, 3, 1, 0).reshape(128, 10)  # CHW rows -> HWC rows
    model.layers[5].set_weights([w, np_(linear.bias)])
    return model


def conv_relu_pool(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    y = jax.nn.relu(y + b[None, :, None, None])
    return jax.lax.reduce_window(y, -jax.numpy.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def digits_cnn(p: dict, x: jax.Array) -> jax.Array:
    """The CNN as a JAX function (at the top level: the XLA switches send it to fresh processes by pickle)."""
    h = conv_relu_pool(conv_relu_pool(x, p["0.weight"], p["0.bias"]), p["3.weight"], p["3.bias"])
    return h.reshape(h.shape[0], -1) @ p["7.weight"].T + p["7.bias"]


def jax_twin(net: torch.nn.Module) -> bc.frontends.jax.JaxModel:
    """The same CNN as a JAX function of the torch module's weights (NCHW, as torch lays it out)."""
    params = {name: t.detach().numpy().copy() for name, t in net.state_dict().items()}
    return bc.jax_model(digits_cnn, params)


def summary(res: bc.SweepResult, framework: str, ulp_exact: dict | None = None) -> list[dict]:
    """Per backend of ``res``: its classes, bits, ULPs, flips and times. ``ulp_exact``: (backend, B) -> the
    ULPs to the exactly rounded logits, for the backends whose sweep has no exact reference (a JAX function
    run as it is: computed here against the native core's ``exact`` order on the same weights)."""
    rows = []
    for label in dict.fromkeys(p["backend"] for p in res.points):
        pts = [p for p in res.points if p["backend"] == label]
        groups: dict[str, list[int]] = {}
        for p in pts:
            groups.setdefault(p["fingerprint"], []).append(p["batch_size"])
        rows.append({"framework": framework, "backend": label, "classes": list(groups.values()),
                     "least_equal": min(p["bitwise_equal_frac"] for p in pts), "ulp_b1": max(p["max_ulp_vs_b1"] for p in pts),
                     "ulp_exact": max(p["max_ulp_vs_exact"] if p["max_ulp_vs_exact"] is not None
                                      else (ulp_exact or {})[(label, p["batch_size"])] for p in pts),
                     "flips": max(p["argmax_changed"] for p in pts),
                     "within": max(p.get("flips_within_rounding", -1) for p in pts),
                     "beyond": max((p.get("beyond_rounding") for p in pts if p.get("beyond_rounding") is not None), default=None),
                     "ms": {p["batch_size"]: p["time_ms"] for p in pts}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two epochs, three batch sizes, a short timer")
    args = ap.parse_args()
    x_tr, y_tr, x_te, y_te = digits.load()
    net = digits.cnn(seed=0)
    digits.train(net, x_tr, y_tr, epochs=2 if args.quick else 15)
    twin = keras_twin(net)
    images = x_te.numpy()
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    with torch.no_grad():
        ref = net(x_te).numpy()
    got = np.asarray(twin(nhwc))
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-5), f"the Keras twin differs from torch by {np.abs(got - ref).max()}"

    in_jax = jax_twin(net)
    got_jax = np.asarray(jax.jit(in_jax.fn)(in_jax.params, images))
    assert np.allclose(got_jax, ref, rtol=1e-4, atol=1e-5), f"the JAX twin differs from torch by {np.abs(got_jax - ref).max()}"

    sizes = [1, 8, 450] if args.quick else [1, 2, 8, 64, 450]
    quick_timer = bc.Timer(min_time_s=0, timeout_s=0.3, target=0.5)
    timer = quick_timer if args.quick else bc.Timer(min_time_s=0.2, timeout_s=4, target=0.02)
    labels = y_te.numpy()
    rounds = 1 if args.quick else 3
    torch_res = bc.sweep(net, sizes, backends=[bc.torch(measure_memory=False), bc.numpy(), bc.native()], data=images,
                         labels=labels, timer=timer, rounds=rounds, progress=False)
    keras_res = bc.sweep(twin, sizes, backends=[bc.keras(), bc.keras(mode="call"), bc.native()], data=nhwc, labels=labels,
                         timer=timer, rounds=rounds, progress=False)
    onnx_path = bc.export_onnx(net, images[:4], os.path.join(tempfile.mkdtemp(), "digits_cnn.onnx"))
    onnx_res = bc.sweep(onnx_path, sizes, backends=[bc.onnx(), bc.onnx(optimization="disabled"), bc.onnx(deterministic=True),
                                                    bc.native()], data=images, labels=labels, timer=timer, rounds=rounds,
                        progress=False)
    jax_res = bc.sweep(in_jax, sizes, backends=[bc.jax(), bc.jax(jit=False)], data=images, labels=labels, timer=timer,
                       rounds=rounds, progress=False)
    exact = bc.native(order="exact").run(bc.from_torch(net, input_shape=(1, 8, 8)), images)
    jax_exact = {(b.label, B): bc.numerics.max_ulp(b.run_module(in_jax, images, B)[0].values, exact)
                 for b in (bc.jax(), bc.jax(jit=False)) for B in sizes}
    runs = (("PyTorch module", torch_res), ("Keras model", keras_res), ("ONNX from torch", onnx_res), ("JAX function", jax_res))
    rows = [row for framework, res in runs for row in summary(res, framework, jax_exact)]
    print(f"accuracy (torch, B=1): {100 * float((ref.argmax(1) == labels).mean()):.2f} % on {len(labels)} digits; "
          f"Keras twin within {np.abs(got - ref).max():.2g} of torch, JAX twin within {np.abs(got_jax - ref).max():.2g}")
    print("| model | backend | classes over B | least =B1 bits | max ULP vs B1 | max ULP vs exact | flips (within rounding) "
          "| beyond rounding | " + " | ".join(f"ms at B={B}" for B in sizes) + " |")
    print("|---|---|---|---|---|---|---|---|" + "---|" * len(sizes))
    for r in rows:
        classes = "invariant" if len(r["classes"]) == 1 else " ".join("{" + ", ".join(map(str, c)) + "}" for c in r["classes"])
        within = f" ({r['within']})" if r["within"] >= 0 else ""
        beyond = "-" if r["beyond"] is None else r["beyond"]
        print(f"| {r['framework']} | {r['backend']} | {classes} | {r['least_equal']:.4f} | {r['ulp_b1']} | {r['ulp_exact']} | "
              f"{r['flips']}{within} | {beyond} | " + " | ".join(f"{r['ms'][B]:.4g}" for B in sizes) + " |")
    at_b1 = {}
    for framework, res in runs:
        for p in res.points:
            if p["batch_size"] == 1:
                at_b1.setdefault(p["fingerprint"], []).append(f"{p['backend']} ({framework})")
    print("the same bits at B=1: " + "; ".join(" = ".join(group) for group in at_b1.values()))
    if not args.quick:  # each runtime's switches on the same CNN (TensorFlow's and XLA's: a fresh process per setting)
        print("| runtime | setting | classes over B | least =B1 bits | max ULP vs B1 |")
        print("|---|---|---|---|---|")
        for runtime, model, data in (("TensorFlow (Keras predict)", twin, nhwc), ("ONNX Runtime", onnx_path, images),
                                     ("XLA (JAX, jit)", in_jax, images)):
            study = bc.studies.switches(model, data, batch_sizes=sizes, progress=False)
            for s in study.data["settings"]:
                classes = "invariant" if len(s["classes"]) == 1 else " ".join("{" + ", ".join(map(str, c)) + "}"
                                                                             for c in s["classes"])
                print(f"| {runtime} | {s['setting']} | {classes} | {s['min_bitwise_equal_frac']:.4f} | {s['max_ulp_vs_b1']} |")


if __name__ == "__main__":
    main()
