"""Test-session settings: probes are cached in a directory of this session, never the user's cache; the GEMM's
scheduling keeps its defaults (BATCHCORE_TUNE=0: no tests wait for a measured search, and every test runs the
same schedule; test_tuning.py runs the tuner itself, and the bits never depend on it)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_probe_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("BATCHCORE_CACHE_DIR", str(tmp_path_factory.mktemp("probe-cache")))
    mp.setenv("BATCHCORE_TUNE", "0")
    yield
    mp.undo()


def pytest_collection_modifyitems(config, items):
    """Two streams under pytest-xdist (``-n 2 --dist loadgroup``, the project's default): every test that
    runs in this process goes to one worker, in order, as one group (the probes, timers and queues they
    measure see one test at a time); the scripts run in fresh interpreters (``slow``, each under a smoke
    timer: their verdicts never rest on speed) share the other worker."""
    for item in items:
        if item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.xdist_group("in_process"))
