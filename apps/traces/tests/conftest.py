import pytest

from apps.api.tests.conftest import api, fresh_api_cache, make_key, released  # noqa: F401 - shared fixtures
from apps.traces import ingest


@pytest.fixture(autouse=True)
def fresh_ingest_caches():
    """Project settings and the backlog count are cached per process: each test starts without them."""
    ingest._settings_cache.clear()
    ingest._backlog_cache.update(at=0.0, count=0.0)
    yield
    ingest._settings_cache.clear()
    ingest._backlog_cache.update(at=0.0, count=0.0)
