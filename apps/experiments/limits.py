"""Concurrency and requests-per-minute limits per model endpoint, shared by every worker process.

With Redis (REDIS_URL, or a redis:// broker) the slots are a sorted set of
leases, taken and freed by small Lua scripts; a lease is short and renewed
while its call runs, so a killed worker's slots free themselves within
LEASE_SECONDS. On the embedded default (SQLite: one machine) a slot is an
exclusive lock on a file in the data folder, which the kernel releases the
moment its process dies. Elsewhere (PostgreSQL without Redis) slots are rows
in the database, taken in a transaction that locks the endpoint row.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

LEASE_SECONDS = 15
POLL_SECONDS = 0.01

_ACQUIRE = """
local key, limit, token, now, lease = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + lease, token)
  redis.call('EXPIRE', key, lease * 2)
  return 1
end
return 0
"""

_RATE = """
local key, limit = KEYS[1], tonumber(ARGV[1])
local count = redis.call('INCR', key)
if count == 1 then redis.call('EXPIRE', key, 120) end
if count > limit then redis.call('DECR', key) return 0 end
return 1
"""


def redis_url() -> str:
    if settings.REDIS_URL:
        return settings.REDIS_URL
    broker = settings.CELERY_BROKER_URL
    return broker if broker.startswith(("redis://", "rediss://")) else ""


class _Turn:
    def __init__(self):
        self.lock = asyncio.Lock()  # FIFO: waiters take turns
        self.released = asyncio.Event()


class Limiter:
    """What every limiter shares: how a call waits for a slot.

    The calls of a process that find the endpoint full queue up in order, and only the first of them
    polls the shared slots (from 2 ms up to POLL_SECONDS apart); a slot this process frees wakes it at
    once. So a worker with more calls than slots keeps every slot busy without a storm of polls.
    """

    leases_expire = True  # a slot is a lease that its holder renews while the call runs

    def __init__(self):
        self._turns: dict[int, _Turn] = {}

    def _turn(self, endpoint_id: int) -> _Turn:
        if endpoint_id not in self._turns:
            self._turns[endpoint_id] = _Turn()
        return self._turns[endpoint_id]

    async def acquire_in_turn(self, endpoint_id: int, limit: int, token: str, stopped) -> bool:
        turn = self._turn(endpoint_id)
        if not turn.lock.locked() and await self.try_acquire(endpoint_id, limit, token):
            return True
        async with turn.lock:
            delay = 0.002
            while not await self.try_acquire(endpoint_id, limit, token):
                if stopped():
                    return False
                turn.released.clear()
                try:
                    await asyncio.wait_for(turn.released.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 1.5, POLL_SECONDS)
            return True

    def notify_release(self, endpoint_id: int) -> None:
        self._turn(endpoint_id).released.set()


class RedisLimiter(Limiter):
    def __init__(self, url: str):
        import redis.asyncio as aioredis

        super().__init__()
        self.client = aioredis.from_url(url)
        self.acquire_script = self.client.register_script(_ACQUIRE)
        self.rate_script = self.client.register_script(_RATE)

    async def try_acquire(self, endpoint_id: int, limit: int, token: str) -> bool:
        key = f"studio:slots:{endpoint_id}"
        return bool(await self.acquire_script(keys=[key], args=[limit, token, time.time(), LEASE_SECONDS]))

    async def release(self, endpoint_id: int, token: str) -> None:
        await self.client.zrem(f"studio:slots:{endpoint_id}", token)

    async def renew(self, endpoint_id: int, token: str) -> None:
        await self.client.zadd(f"studio:slots:{endpoint_id}", {token: time.time() + LEASE_SECONDS}, xx=True)

    async def try_rate(self, endpoint_id: int, per_minute: int) -> bool:
        key = f"studio:rpm:{endpoint_id}:{int(time.time() // 60)}"
        return bool(await self.rate_script(keys=[key], args=[per_minute]))

    async def close(self) -> None:
        await self.client.aclose()


def _db_try_acquire(endpoint_id: int, limit: int, token: str) -> bool:
    from apps.experiments.models import EndpointSlot
    from apps.providers.models import ModelEndpoint

    try:
        now = timezone.now()
        with transaction.atomic():
            # Locking the endpoint row serializes takers of its slots (SQLite's IMMEDIATE transaction does too).
            list(ModelEndpoint.objects.select_for_update().filter(pk=endpoint_id).values_list("pk", flat=True))
            EndpointSlot.objects.filter(endpoint_id=endpoint_id, expires_at__lt=now).delete()
            if EndpointSlot.objects.filter(endpoint_id=endpoint_id).count() >= limit:
                return False
            EndpointSlot.objects.create(
                endpoint_id=endpoint_id, holder=token, expires_at=now + timedelta(seconds=LEASE_SECONDS)
            )
            return True
    finally:
        connection.close()


def _db_release(endpoint_id: int, token: str) -> None:
    from apps.experiments.models import EndpointSlot

    try:
        EndpointSlot.objects.filter(endpoint_id=endpoint_id, holder=token).delete()
    finally:
        connection.close()


def _db_renew(endpoint_id: int, token: str) -> None:
    from apps.experiments.models import EndpointSlot

    try:
        EndpointSlot.objects.filter(endpoint_id=endpoint_id, holder=token).update(
            expires_at=timezone.now() + timedelta(seconds=LEASE_SECONDS)
        )
    finally:
        connection.close()


def _db_try_rate(endpoint_id: int, per_minute: int) -> bool:
    from apps.experiments.models import EndpointRateWindow
    from apps.providers.models import ModelEndpoint

    try:
        window = int(time.time() // 60)
        with transaction.atomic():
            list(ModelEndpoint.objects.select_for_update().filter(pk=endpoint_id).values_list("pk", flat=True))
            row, _ = EndpointRateWindow.objects.get_or_create(endpoint_id=endpoint_id, window=window)
            if row.count >= per_minute:
                return False
            EndpointRateWindow.objects.filter(pk=row.pk).update(count=row.count + 1)
            EndpointRateWindow.objects.filter(endpoint_id=endpoint_id, window__lt=window - 1).delete()
            return True
    finally:
        connection.close()


class DatabaseLimiter(Limiter):
    async def try_acquire(self, endpoint_id: int, limit: int, token: str) -> bool:
        return await asyncio.to_thread(_db_try_acquire, endpoint_id, limit, token)

    async def release(self, endpoint_id: int, token: str) -> None:
        await asyncio.to_thread(_db_release, endpoint_id, token)

    async def renew(self, endpoint_id: int, token: str) -> None:
        await asyncio.to_thread(_db_renew, endpoint_id, token)

    async def try_rate(self, endpoint_id: int, per_minute: int) -> bool:
        return await asyncio.to_thread(_db_try_rate, endpoint_id, per_minute)

    async def close(self) -> None:
        await asyncio.to_thread(close_old_connections)


class FileLimiter(DatabaseLimiter):
    """Slots as non-blocking exclusive file locks (one machine); the rate counter stays in the database.

    Each slot's file is opened once per process and kept open; taking a slot is one flock() on it, and
    the search starts after the slot taken last, so a busy endpoint costs a few system calls, not one
    per slot. A process never tries a slot it holds itself (a second flock on the same open file would
    succeed), and the kernel drops every lock the moment its process dies.
    """

    leases_expire = False

    def __init__(self, folder):
        super().__init__()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[tuple[int, int], int] = {}  # (endpoint, slot) -> open descriptor
        self.mine: set[tuple[int, int]] = set()  # slots this process holds
        self.held: dict[str, tuple[int, int]] = {}  # token -> slot
        self.next: dict[int, int] = {}  # endpoint -> where the next search starts

    def _descriptor(self, key: tuple[int, int]) -> int:
        descriptor = self.files.get(key)
        if descriptor is None:
            path = self.folder / f"endpoint-{key[0]}-slot-{key[1]}.lock"
            descriptor = self.files[key] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        return descriptor

    async def try_acquire(self, endpoint_id: int, limit: int, token: str) -> bool:
        start = self.next.get(endpoint_id, 0)
        for step in range(limit):
            key = (endpoint_id, (start + step) % limit)
            if key in self.mine:
                continue
            try:
                fcntl.flock(self._descriptor(key), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self.mine.add(key)
            self.held[token] = key
            self.next[endpoint_id] = (key[1] + 1) % limit
            return True
        return False

    async def release(self, endpoint_id: int, token: str) -> None:
        key = self.held.pop(token, None)
        if key is not None:
            fcntl.flock(self.files[key], fcntl.LOCK_UN)
            self.mine.discard(key)

    async def renew(self, endpoint_id: int, token: str) -> None:
        return None  # a file lock lasts as long as its holder

    async def close(self) -> None:
        for descriptor in self.files.values():
            os.close(descriptor)  # closing drops any lock still held
        self.files.clear()
        self.mine.clear()
        self.held.clear()
        await super().close()


def make_limiter():
    url = redis_url()
    if url:
        return RedisLimiter(url)
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return FileLimiter(settings.DATA_DIR / "limits")
    return DatabaseLimiter()


@asynccontextmanager
async def endpoint_slot(limiter, *, endpoint_id: int, concurrency: int, per_minute: int | None, stopped):
    """Wait for a free slot (and room in this minute's budget); yields False if the batch was stopped meanwhile."""
    token = uuid.uuid4().hex
    if not await limiter.acquire_in_turn(endpoint_id, concurrency, token, stopped):
        yield False
        return

    async def keep_alive() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await limiter.renew(endpoint_id, token)

    # A file lock lasts as long as its holder: only leases in Redis or the database need renewing.
    renewer = asyncio.create_task(keep_alive()) if limiter.leases_expire else None
    try:
        if per_minute:
            while not await limiter.try_rate(endpoint_id, per_minute):
                if stopped():
                    yield False
                    return
                await asyncio.sleep(1.0)
        yield True
    finally:
        if renewer is not None:
            renewer.cancel()
        await limiter.release(endpoint_id, token)
        limiter.notify_release(endpoint_id)
