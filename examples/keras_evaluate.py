"""The seeds' Keras evaluation questions: does model.evaluate report another loss at batch size 32 than at
512, and does a model trained at batch size 256 evaluate differently at 64?

A small Keras CNN trained on scikit-learn's bundled digits (1,797 8 x 8 images, no download) with
model.fit(batch_size=256), then evaluated on the 450 held-out digits at several batch sizes: the loss
model.evaluate itself reports and whether its bits equal B=1's, the logits' bits, the same per-row losses
summed exactly, and the accuracy (bc.studies.evaluation), through Keras and through batchcore's native
core (the same model read by bc.from_keras). Each question is answered in one sentence at the end. At 512,
Keras runs the 450 rows as one batch: the study's B=450.

    python examples/keras_evaluate.py                        # about 20 s on 2 cores
    python examples/keras_evaluate.py --quick --out e.json   # CI smoke; then: batchcore report e.json -o e.html
"""

import argparse

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import batchcore as bc

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--quick", action="store_true", help="fewer epochs (CI smoke)")
ap.add_argument("--out", default=None, help="write the study as JSON; then: batchcore report OUT -o page.html")
args = ap.parse_args()

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)[..., None]  # NHWC, as Keras takes images
x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=0,
                                                    stratify=digits.target)
keras.utils.set_random_seed(0)
L = keras.layers
model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                          L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dense(10)],
                         name="digits_cnn")
model.compile(optimizer=keras.optimizers.Adam(3e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3 if args.quick else 40, batch_size=256, verbose=0)

sizes = [1, 32, 64, len(x_test)]
study = bc.studies.evaluation(model, x_test, y_test, batch_sizes=sizes, backends=[bc.keras(), bc.native()])
print(study)
if args.out:
    study.to_json(args.out)

own = {p["batch_size"]: p for p in study.data["points"] if p["backend"] == "keras[predict]"}


def same_bits(a: float, b: float) -> bool:
    return bool(np.float32(a).view(np.uint32) == np.float32(b).view(np.uint32))


def ulp(a: float, b: float) -> int:
    return int(bc.numerics.max_ulp(np.array([a], np.float32), np.array([b], np.float32)))


small, whole = own[32], own[len(x_test)]
print(f"Evaluate at 32 vs 512: model.evaluate reports {small['reported_loss']:.9g} at 32 and {whole['reported_loss']:.9g} "
      f"at 512 (one batch of {len(x_test)}): " + ("the same bits" if same_bits(small["reported_loss"], whole["reported_loss"])
                                                  else f"{ulp(small['reported_loss'], whole['reported_loss'])} ULP apart")
      + f"; accuracy {100 * small['accuracy']:.2f} % and {100 * whole['accuracy']:.2f} %; the per-row losses summed exactly "
      f"give {small['loss_exact_sum']:.12g} and {whole['loss_exact_sum']:.12g}.")
at64 = own[64]
print(f"Trained at 256, evaluated at 64: the logits' bits equal B=1's for {100 * at64['logits_equal_frac']:.1f} % of them, "
      f"the reported loss is {at64['reported_loss']:.9g} ("
      + ("the same bits as at B=1" if at64["reported_loss_equal_b1"] else f"{at64['reported_loss_ulp_vs_b1']} ULP from B=1's")
      + f"), the accuracy {100 * at64['accuracy']:.2f} % (B=1: {100 * own[1]['accuracy']:.2f} %): what moves the last bits "
      "is the evaluation batch's own arithmetic (" + at64["why"] + ").")
