from apps.api.tests.conftest import api, fresh_api_cache, make_key, released  # noqa: F401 - shared fixtures
from apps.traces.tests.conftest import fresh_ingest_caches  # noqa: F401
