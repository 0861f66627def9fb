"""The endpoint's concurrency and requests-per-minute limits (per process)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from apps.providers.gateway.errors import ErrorKind, GatewayError, _give_up, _log_outcome

if TYPE_CHECKING:
    from apps.providers.gateway.calls import Target


class _Limiter:
    def __init__(self, concurrency: int, per_minute: int | None):
        self.concurrency = concurrency
        self.per_minute = per_minute
        self.semaphore = threading.BoundedSemaphore(concurrency)
        self.starts: deque[float] = deque()
        self.lock = threading.Lock()
        self.async_semaphores: dict[int, asyncio.Semaphore] = {}

    def wait_for_rate(self) -> float:
        """Seconds to wait before the next request may start (0 when it may start now; it is then counted)."""
        if not self.per_minute:
            return 0.0
        with self.lock:
            now = time.monotonic()
            while self.starts and now - self.starts[0] >= 60:
                self.starts.popleft()
            if len(self.starts) < self.per_minute:
                self.starts.append(now)
                return 0.0
            return 60 - (now - self.starts[0]) + 0.01

    def pace(self) -> None:
        """Sleep until this minute's request budget lets the next request start (and count it)."""
        wait = self.wait_for_rate()
        while wait > 0:
            time.sleep(min(wait, 5))
            wait = self.wait_for_rate()

    async def apace(self) -> None:
        """The async twin of `pace`."""
        wait = self.wait_for_rate()
        while wait > 0:
            await asyncio.sleep(min(wait, 5))
            wait = self.wait_for_rate()

    def take_slot(self, target: Target, what: str, started: float, attempts: int, timeout: float, retries: int):
        """Take a concurrency slot (sync calls), or give up, logged, when none frees within twice the timeout."""
        if not self.semaphore.acquire(timeout=max(timeout, 1) * 2):
            error = GatewayError(ErrorKind.TIMEOUT, f"'{target.name}' is busy: no free slot within {timeout:g} s.")
            _log_outcome(target, what, started, attempts, error)
            raise _give_up(error, attempts, retries)

    def async_semaphore(self) -> asyncio.Semaphore:
        loop_id = id(asyncio.get_running_loop())
        with self.lock:
            if loop_id not in self.async_semaphores:
                self.async_semaphores[loop_id] = asyncio.Semaphore(self.concurrency)
            return self.async_semaphores[loop_id]


_limiters: dict[str, _Limiter] = {}
_limiters_lock = threading.Lock()


def _limiter(target: Target) -> _Limiter:
    key = target.limiter_key or "|".join(
        str(part) for part in (target.model, target.api_base, target.max_concurrency, target.requests_per_minute)
    )
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = _Limiter(target.max_concurrency, target.requests_per_minute)
        return _limiters[key]
