"""The seed's Keras question: does model.predict give other values at another batch size, and is B=1 "the
most precise"?

The seed's model, as written: Dense(10, relu) on 5 inputs, then Dense(3, softmax), trained briefly; its
predictions for the same 10 rows at B=1, 2 and 10, through model.predict, through direct calls
model(x_batch), and through batchcore's native core (the same Keras model read by bc.from_keras). Each
point says whether its bits equal B=1's and how far it is from the exactly rounded result, so the claim
is answered by a measurement, in one sentence at the end.

    python examples/keras_predict.py            # about 15 s on 2 cores (importing TensorFlow is most of it)
    python examples/keras_predict.py --quick    # CI smoke: fewer training epochs, a short timer
"""

import argparse

import keras
import numpy as np

import batchcore as bc

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--quick", action="store_true", help="fewer epochs, a short timer (CI smoke)")
ap.add_argument("--out", default=None, help="also log the sweep's points to this JSON-lines file")
args = ap.parse_args()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x_train = rng.standard_normal((600, 5)).astype(np.float32)
y_train = (x_train[:, 0] + x_train[:, 1] * x_train[:, 2] > 0).astype(np.int64) + (x_train[:, 3] > 1)
model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(10, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3 if args.quick else 30, batch_size=32, verbose=0)

x = rng.standard_normal((10, 5)).astype(np.float32)  # the same 10 rows at every batch size
timer = bc.Timer(min_time_s=0, timeout_s=0.3, target=0.5) if args.quick else bc.Timer(min_time_s=0.2, timeout_s=3)
res = bc.sweep(model, data=x, batch_sizes=[1, 2, 10], backends=[bc.keras(), bc.keras(mode="call"), bc.native()],
               timer=timer, rounds=1 if args.quick else 3, out=args.out)
print(res.table())
print(res.classes())


def answer(points: list) -> str:
    """The seed's claim, answered from the points of model.predict."""
    pts = {p["batch_size"]: p for p in points if p["backend"] == "keras[predict]"}
    same = all(p["bitwise_equal_frac"] == 1 for p in pts.values())
    err = {B: p["max_ulp_vs_exact"] for B, p in pts.items()}
    best = min(err.values())
    bits = ("model.predict gives the same bits at B=1, 2 and 10" if same else
            "model.predict's bits differ between B=1, 2 and 10 (" + ", ".join(
                f"B={B}: {100 * p['bitwise_equal_frac']:.0f} % equal to B=1" for B, p in pts.items() if B != 1) + ")")
    errors = ", ".join(f"B={B}: {e} ULP" for B, e in err.items())
    if err[1] == best and any(e > best for B, e in err.items() if B != 1):
        verdict = "B=1 is the closest to the exactly rounded result here"
    elif err[1] == best:
        verdict = "no batch size is more precise than another: B=1 is not the most precise, only as precise"
    else:
        verdict = "B=1 is not the most precise: another batch size is closer to the exactly rounded result"
    native = sorted({p["max_ulp_vs_exact"] for p in points if p["backend"] == "native[seq]"})
    core = f" (batchcore's native core, in its seq order: {', '.join(map(str, native))} ULP at every B)"
    return (f"Claim 'B=1 is the most precise': {bits}; largest distance to the exactly rounded result {errors}: "
            f"{verdict}{core}.")


print(answer(res.points))
