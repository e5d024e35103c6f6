"""Backends travel: each is made anew from its recorded settings (``backends.from_settings``), pickles
as those settings, and computes the same bits in a worker process as here."""

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import batchcore as bc
from batchcore.backends import from_settings

MODEL = bc.mlp([24, 16, 5], activation="gelu", head="softmax", seed=3)
X = np.random.default_rng(1).standard_normal((7, 24), dtype=np.float32)


def every_kind():
    made = [bc.native(), bc.native(order="splitk:4", threads=1), bc.native(order="pairwise", precision="bf16"),
            bc.native(policy="library-like"), bc.native(order="lanes:8", simd="scalar"), bc.numpy()]
    try:
        made += [bc.torch(threads=1, measure_memory=False)]
    except bc.MissingDependencyError:
        pass
    return made


def forward(backend, model, x):
    """What the worker runs: the backend as it arrived."""
    return backend.label, backend.settings(), backend.run_batched(model, x, 3)


@pytest.mark.parametrize("backend", every_kind(), ids=lambda b: b.label)
def test_a_backend_is_made_anew_from_its_settings_and_by_pickle(backend):
    again = from_settings(backend.settings())
    assert type(again) is type(backend) and again.settings() == backend.settings() and again.label == backend.label
    unpickled = pickle.loads(pickle.dumps(backend))
    assert unpickled is not backend and unpickled.settings() == backend.settings()
    assert np.array_equal(unpickled.run(MODEL, X).view(np.uint32), backend.run(MODEL, X).view(np.uint32))


def test_every_backend_computes_the_same_bits_in_a_worker_process():
    backends = every_kind()
    here = [forward(b, MODEL, X) for b in backends]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = list(pool.map(forward, backends, [MODEL] * len(backends), [X] * len(backends)))
    for (label, settings, y), (label_w, settings_w, y_w) in zip(here, there, strict=True):
        assert label_w == label and settings_w == settings
        assert np.array_equal(y_w.view(np.uint32), y.view(np.uint32)), label


def test_settings_of_an_unknown_kind_are_refused():
    with pytest.raises(bc.ArgumentError, match="unknown kind of backend"):
        from_settings({"kind": "tensorflow", "device": "cpu"})
    with pytest.raises(bc.OrderError):
        from_settings({**bc.native().settings(), "order": "backwards"})
