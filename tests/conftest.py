"""Test-session settings: probes are cached in a directory of this session, never the user's cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_probe_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("BATCHCORE_CACHE_DIR", str(tmp_path_factory.mktemp("probe-cache")))
    yield
    mp.undo()
