from apps.api.tests.conftest import api, fresh_api_cache, make_key, released  # noqa: F401 - shared fixtures
