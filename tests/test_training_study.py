"""Study 3 (training): the seeds' statistics against formulas written out here; gradient accumulation against
plain torch loops and a hand-derived case whose sums are exact in any order (so the bits must agree);
BatchNorm's two modes against a plain loop."""

import math

import numpy as np
import pytest
from scipy import stats

import batchcore as bc
from batchcore.studies.training import batch_effect, batchnorm_modes
from batchcore.studies.training_torch import accumulation, batchnorm_outputs

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


def test_seed_statistics_and_welch_by_hand():
    runs = {32: [0.90, 0.93, 0.91], 512: [0.80, 0.84, 0.81, 0.82]}
    got = batch_effect(runs)
    a, b = np.array(runs[32]), np.array(runs[512])
    for B, v in ((32, a), (512, b)):
        mean, sd = v.sum() / len(v), math.sqrt(((v - v.mean()) ** 2).sum() / (len(v) - 1))
        half = stats.t.ppf(0.975, len(v) - 1) * sd / math.sqrt(len(v))
        assert got["per_batch"][B]["mean"] == pytest.approx(mean) and got["per_batch"][B]["std"] == pytest.approx(sd)
        assert got["per_batch"][B]["ci"] == pytest.approx([mean - half, mean + half])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    assert got["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert got["difference"] == pytest.approx(a.mean() - b.mean()) and got["compared"] == [32, 512]


def plain_grads(net, x, y, chunks):
    net.zero_grad()
    for xs, ys in zip(x.chunk(chunks), y.chunk(chunks), strict=False):
        (F.cross_entropy(net(xs), ys) / chunks).backward()
    return np.concatenate([p.grad.numpy().ravel() for p in net.parameters()])


def test_accumulation_against_plain_loops():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))
    got = accumulation(net, x, y, steps=4)
    one, acc = plain_grads(net, x, y, 1), plain_grads(net, x, y, 4)
    assert got["equal_frac"] == float((one.view(np.uint32) == acc.view(np.uint32)).mean())
    assert got["elements"] == one.size and got["rows"] == 128 and got["steps"] == 4
    assert 0 < got["one_step_rel_err_vs_f64"] < 1e-5 and 0 < got["accumulated_rel_err_vs_f64"] < 1e-5


def test_accumulation_with_exact_sums_gives_equal_bits():
    # Zero weights: every softmax is 1/4 exactly, so each delta is 1/4 - onehot (exact); small-integer inputs
    # make every product and partial sum an exact float32: any grouping gives the same bits.
    lin = nn.Linear(6, 4)
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    x = torch.randint(-3, 4, (64, 6)).float()
    y = torch.randint(0, 4, (64,))
    got = accumulation(nn.Sequential(lin), x, y, steps=4)
    assert got["equal_frac"] == 1.0 and got["max_ulp"] == 0
    assert got["one_step_rel_err_vs_f64"] == 0.0


def test_batchnorm_modes_against_a_plain_loop():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x, y = torch.randn(96, 12) * 3 + 1, torch.randint(0, 3, (96,))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rows = batchnorm_modes(net, x, y, [2, 8, 96], batchnorm_outputs)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # running statistics untouched
    with torch.no_grad():
        for r in rows:
            net.train(r["mode"] == "train")
            out = torch.cat([net(x[i:i + r["batch_size"]]) for i in range(0, 96, r["batch_size"])])
            assert r["accuracy"] * 96 == pytest.approx(int((out.argmax(1) == y).sum()), abs=1e-9)
        net.train()
        full = net(x)
    train = {r["batch_size"]: r for r in rows if r["mode"] == "train"}
    assert train[96]["flips_vs_full"] == 0 and train[2]["max_abs_diff"] > 0.1  # batch statistics move outputs
    evals = [r for r in rows if r["mode"] == "eval"]
    assert all(r["max_abs_diff"] < 1e-5 for r in evals)  # running statistics: only the kernel's rounding
    assert full.shape == (96, 3)


def test_the_study_trains_keras_models_and_its_gradients_agree_with_a_plain_tape():
    """The study with Keras networks (their own fit as the training step): accuracy per training B from
    several seeds, the accumulation's figures recomputed here with tf.GradientTape, and BatchNormalization
    in training mode against inference mode."""
    from keras_models import import_keras

    keras = import_keras()
    import tensorflow as tf

    def make(seed, bn=False):
        keras.utils.set_random_seed(seed)
        L = keras.layers
        layers = [keras.Input((16,)), L.Dense(32)] + ([L.BatchNormalization()] if bn else []) + [L.ReLU(), L.Dense(4)]
        net = keras.Sequential(layers)
        net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return net

    def train(net, x, y, epochs, batch_size, seed):
        keras.utils.set_random_seed(seed)
        net.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)

    rng = np.random.default_rng(3)
    x = rng.standard_normal((256, 16)).astype(np.float32)
    y = (x[:, :4].argmax(1)).astype(np.int64)
    study = bc.studies.training(make, lambda s: make(s, bn=True), train, x[:192], y[:192], x[192:], y[192:],
                                batch_sizes=(16, 64), seeds=(0, 1), epochs=1, accumulate=(4, 16), bn_sizes=(2, 8, 64),
                                progress=False)
    assert set(study.data["batch_effect"]["per_batch"]) == {16, 64}
    net = make(0)  # what the study measured its gradients on: a fresh network of seed 0

    def tape(chunks):
        total = None
        for xs, ys in zip(np.array_split(x[:64], chunks), np.array_split(y[:64], chunks), strict=True):
            with tf.GradientTape() as t:
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(ys, net(xs, training=True),
                                                                                  from_logits=True)) / chunks
            g = t.gradient(loss, net.trainable_variables)
            total = g if total is None else [a + b for a, b in zip(total, g, strict=True)]
        return np.concatenate([np.asarray(v).ravel() for v in total])

    one, acc = tape(1), tape(4)
    got = study.data["accumulation"]
    assert got["elements"] == one.size and got["rows"] == 64 and got["steps"] == 4
    assert got["equal_frac"] == (one.view(np.uint32) == acc.view(np.uint32)).mean()
    assert got["one_step_rel_err_vs_f64"] < 1e-5 and got["accumulated_rel_err_vs_f64"] < 1e-5
    modes = {(r["mode"], r["batch_size"]) for r in study.data["batchnorm"]}
    assert modes == {(m, B) for m in ("eval", "train") for B in (2, 8, 64)}
    assert all(r["flips_vs_full"] == 0 for r in study.data["batchnorm"] if r["mode"] == "eval" and r["batch_size"] == 64)
    assert "tf.GradientTape" in study.notes[1]
