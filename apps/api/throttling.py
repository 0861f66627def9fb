"""Requests per key per time window, counted in the shared cache (Redis in production)."""

from __future__ import annotations

import functools
import re
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

from apps.api.cache import KeyInfo

_PERIODS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


@functools.lru_cache(maxsize=8)
def parse_rate(rate: str) -> tuple[int, int] | None:
    """'600/min' -> (600, 60); 'off' or '0' -> None (no limit)."""
    if rate.strip().lower() in ("", "0", "off", "none"):
        return None
    match = _RATE.match(rate.lower())
    if not match or match.group(2) not in _PERIODS:
        raise ImproperlyConfigured(f"API_THROTTLE_RATE={rate!r}: use a count per period such as 600/min or off.")
    return int(match.group(1)), _PERIODS[match.group(2)]


def seconds_to_wait(key: KeyInfo) -> float | None:
    """Count one request of the key; None when it is allowed, else the seconds until its window ends."""
    rate = parse_rate(settings.API_THROTTLE_RATE)
    if rate is None:
        return None
    limit, period = rate
    now = time.time()
    window = int(now // period)
    cache_key = f"api-throttle:{key.id}:{period}:{window}"
    try:
        count = cache.incr(cache_key)
    except ValueError:
        if cache.add(cache_key, 1, timeout=period + 1):
            count = 1
        else:
            count = cache.incr(cache_key)
    return None if count <= limit else (window + 1) * period - now


class KeyRateThrottle(BaseThrottle):
    """A fixed window per key: one cache increment per request."""

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, KeyInfo):
            return True
        self._wait = seconds_to_wait(request.auth)
        return self._wait is None

    def wait(self) -> float:
        return getattr(self, "_wait", None)
