"""The endpoint's concurrency and requests-per-minute limits, shared by every process of the studio.

The gateway takes a slot (and a place in this minute's budget) for every attempt of every call:
generate, agenerate, stream, astream, embed and the LLM-judge calls, from the web process, the
playground's tasks and the experiment workers alike; no caller holds a limiter of its own.

Where the slots live depends on the setup:
- With Redis (REDIS_URL, or a redis:// broker) they are a sorted set of leases, taken and freed by
  small Lua scripts; a lease is short and renewed while its call runs, so a killed process's slots
  free themselves within LEASE_SECONDS.
- On the embedded default (SQLite: one machine) a slot is an exclusive lock on a file in the data
  folder, which the kernel releases the moment its process dies; the minute's counter is a file too.
- Elsewhere (PostgreSQL without Redis) slots are rows in the database (leases, like Redis's), taken
  in a transaction that locks the endpoint row, on helper threads with their own connections.

A Target that names no endpoint (a benchmark's, a test's) is limited within its own process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings

from apps.providers.gateway.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from apps.providers.gateway.calls import Target

LEASE_SECONDS = 15
POLL_SECONDS = 0.01
RATE_POLL_SECONDS = 1.0


class CallNotStarted(GatewayError):
    """The caller asked to stop (pause, cancel, budget) while the call waited for its slot: nothing was sent."""

    def __init__(self, name: str):
        super().__init__(ErrorKind.PROVIDER_ERROR, f"The call to '{name}' was not started.", retryable=False)


# --- backends: where the slots and the minute's counters live -----------------------------------------


class Backend:
    """Sync operations on slots and counters; the async twins run them on a thread unless they are instant."""

    leases_expire = True  # a slot is a lease that its holder renews while the call runs

    def try_acquire(self, key, limit: int, token: str) -> bool:
        raise NotImplementedError

    def release(self, key, token: str) -> None:
        raise NotImplementedError

    def renew(self, held: list[tuple[object, str]]) -> None:
        return None

    def try_rate(self, key, per_minute: int) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        return None

    async def atry_acquire(self, key, limit: int, token: str) -> bool:
        return await asyncio.to_thread(self.try_acquire, key, limit, token)

    async def arelease(self, key, token: str) -> None:
        await asyncio.to_thread(self.release, key, token)

    async def atry_rate(self, key, per_minute: int) -> bool:
        return await asyncio.to_thread(self.try_rate, key, per_minute)


class LocalBackend(Backend):
    """Slots counted in this process only (targets without an endpoint)."""

    leases_expire = False

    def __init__(self):
        self.lock = threading.Lock()
        self.holders: dict[object, set[str]] = {}
        self.starts: dict[object, list[float]] = {}

    def try_acquire(self, key, limit: int, token: str) -> bool:
        with self.lock:
            holders = self.holders.setdefault(key, set())
            if len(holders) >= limit:
                return False
            holders.add(token)
            return True

    def release(self, key, token: str) -> None:
        with self.lock:
            self.holders.get(key, set()).discard(token)

    def try_rate(self, key, per_minute: int) -> bool:
        with self.lock:
            now = time.monotonic()
            starts = [t for t in self.starts.get(key, []) if now - t < 60]
            if len(starts) >= per_minute:
                self.starts[key] = starts
                return False
            starts.append(now)
            self.starts[key] = starts
            return True

    async def atry_acquire(self, key, limit: int, token: str) -> bool:
        return self.try_acquire(key, limit, token)

    async def arelease(self, key, token: str) -> None:
        self.release(key, token)

    async def atry_rate(self, key, per_minute: int) -> bool:
        return self.try_rate(key, per_minute)


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


class RedisBackend(Backend):
    """Leases in Redis: one sync client, and one async client per event loop (a client is bound to its loop)."""

    def __init__(self, url: str):
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)
        self.acquire_script = self.client.register_script(_ACQUIRE)
        self.rate_script = self.client.register_script(_RATE)
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _aclient(self):
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            import redis.asyncio as aioredis

            client = aioredis.from_url(self.url)
            found = self._async[loop] = (
                client,
                client.register_script(_ACQUIRE),
                client.register_script(_RATE),
            )
        return found

    @staticmethod
    def _slots(key) -> str:
        return f"studio:slots:{key}"

    @staticmethod
    def _minute(key) -> str:
        return f"studio:rpm:{key}:{int(time.time() // 60)}"

    def try_acquire(self, key, limit: int, token: str) -> bool:
        return bool(self.acquire_script(keys=[self._slots(key)], args=[limit, token, time.time(), LEASE_SECONDS]))

    def release(self, key, token: str) -> None:
        self.client.zrem(self._slots(key), token)

    def renew(self, held: list[tuple[object, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        until = time.time() + LEASE_SECONDS
        for key, token in held:
            pipe.zadd(self._slots(key), {token: until}, xx=True)
        pipe.execute()

    def try_rate(self, key, per_minute: int) -> bool:
        return bool(self.rate_script(keys=[self._minute(key)], args=[per_minute]))

    async def atry_acquire(self, key, limit: int, token: str) -> bool:
        _client, acquire, _rate = self._aclient()
        return bool(await acquire(keys=[self._slots(key)], args=[limit, token, time.time(), LEASE_SECONDS]))

    async def arelease(self, key, token: str) -> None:
        client, _acquire, _rate = self._aclient()
        await client.zrem(self._slots(key), token)

    async def atry_rate(self, key, per_minute: int) -> bool:
        _client, _acquire, rate = self._aclient()
        return bool(await rate(keys=[self._minute(key)], args=[per_minute]))

    def close(self) -> None:
        self.client.close()


# The database backend works on threads of its own, so a slot is never taken inside a caller's transaction
# (it would be invisible to the other processes until that transaction commits).
_db_threads = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="endpoint-slots")


def _on_db_thread(function: Callable, *args):
    from django.db import connection

    def run():
        try:
            return function(*args)
        finally:
            connection.close()

    return run


def _db_try_acquire(endpoint_id: int, limit: int, token: str) -> bool:
    from django.db import transaction
    from django.utils import timezone

    from apps.providers.models import EndpointSlot, ModelEndpoint

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


def _db_release(endpoint_id: int, token: str) -> None:
    from apps.providers.models import EndpointSlot

    EndpointSlot.objects.filter(endpoint_id=endpoint_id, holder=token).delete()


def _db_renew(held: list[tuple[object, str]]) -> None:
    from django.utils import timezone

    from apps.providers.models import EndpointSlot

    EndpointSlot.objects.filter(holder__in=[token for _key, token in held]).update(
        expires_at=timezone.now() + timedelta(seconds=LEASE_SECONDS)
    )


def _db_try_rate(endpoint_id: int, per_minute: int) -> bool:
    from django.db import transaction

    from apps.providers.models import EndpointRateWindow, ModelEndpoint

    window = int(time.time() // 60)
    with transaction.atomic():
        list(ModelEndpoint.objects.select_for_update().filter(pk=endpoint_id).values_list("pk", flat=True))
        row, _ = EndpointRateWindow.objects.get_or_create(endpoint_id=endpoint_id, window=window)
        if row.count >= per_minute:
            return False
        EndpointRateWindow.objects.filter(pk=row.pk).update(count=row.count + 1)
        EndpointRateWindow.objects.filter(endpoint_id=endpoint_id, window__lt=window - 1).delete()
        return True


class DatabaseBackend(Backend):
    def _run(self, function: Callable, *args):
        return _db_threads.submit(_on_db_thread(function, *args)).result()

    async def _arun(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(_db_threads, _on_db_thread(function, *args))

    def try_acquire(self, key, limit: int, token: str) -> bool:
        return self._run(_db_try_acquire, key, limit, token)

    def release(self, key, token: str) -> None:
        self._run(_db_release, key, token)

    def renew(self, held: list[tuple[object, str]]) -> None:
        self._run(_db_renew, held)

    def try_rate(self, key, per_minute: int) -> bool:
        return self._run(_db_try_rate, key, per_minute)

    async def atry_acquire(self, key, limit: int, token: str) -> bool:
        return await self._arun(_db_try_acquire, key, limit, token)

    async def arelease(self, key, token: str) -> None:
        await self._arun(_db_release, key, token)

    async def atry_rate(self, key, per_minute: int) -> bool:
        return await self._arun(_db_try_rate, key, per_minute)


class FileBackend(Backend):
    """Slots as non-blocking exclusive file locks (one machine), the minute's counter as a locked file.

    Each slot's file is opened once per process and kept open; taking a slot is one flock() on it, and
    the search starts after the slot taken last, so a busy endpoint costs a few system calls, not one
    per slot. A process never tries a slot it holds itself (a second flock on the same open file would
    succeed), and the kernel drops every lock the moment its process dies.
    """

    leases_expire = False

    def __init__(self, folder):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.files: dict[tuple[object, object], int] = {}  # (endpoint, slot) -> open descriptor
        self.mine: set[tuple[object, object]] = set()  # slots this process holds
        self.held: dict[str, tuple[object, object]] = {}  # token -> slot
        self.next: dict[object, int] = {}  # endpoint -> where the next search starts

    def _descriptor(self, key: tuple[object, object]) -> int:
        descriptor = self.files.get(key)
        if descriptor is None:
            path = self.folder / f"endpoint-{key[0]}-slot-{key[1]}.lock"
            descriptor = self.files[key] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        return descriptor

    def try_acquire(self, key, limit: int, token: str) -> bool:
        with self.lock:
            start = self.next.get(key, 0)
            for step in range(limit):
                slot = (key, (start + step) % limit)
                if slot in self.mine:
                    continue
                try:
                    fcntl.flock(self._descriptor(slot), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                self.mine.add(slot)
                self.held[token] = slot
                self.next[key] = (slot[1] + 1) % limit
                return True
            return False

    def release(self, key, token: str) -> None:
        with self.lock:
            slot = self.held.pop(token, None)
            if slot is not None:
                fcntl.flock(self.files[slot], fcntl.LOCK_UN)
                self.mine.discard(slot)

    def try_rate(self, key, per_minute: int) -> bool:
        with self.lock:
            descriptor = self._descriptor((key, "rate"))
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # held for two small reads and writes
            try:
                data = os.pread(descriptor, 16, 0)
                minute, count = struct.unpack("<qq", data) if len(data) == 16 else (0, 0)
                now = int(time.time() // 60)
                if minute != now:
                    minute, count = now, 0
                if count >= per_minute:
                    return False
                os.pwrite(descriptor, struct.pack("<qq", minute, count + 1), 0)
                return True
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    async def atry_acquire(self, key, limit: int, token: str) -> bool:
        return self.try_acquire(key, limit, token)

    async def arelease(self, key, token: str) -> None:
        self.release(key, token)

    async def atry_rate(self, key, per_minute: int) -> bool:
        return self.try_rate(key, per_minute)

    def close(self) -> None:
        with self.lock:
            for descriptor in self.files.values():
                os.close(descriptor)  # closing drops any lock still held
            self.files.clear()
            self.mine.clear()
            self.held.clear()

    def forget_inherited(self) -> None:
        """In a forked child: close the parent's descriptors without unlocking (the locks are the parent's)."""
        self.close()


def redis_url() -> str:
    if settings.REDIS_URL:
        return settings.REDIS_URL
    broker = settings.CELERY_BROKER_URL
    return broker if broker.startswith(("redis://", "rediss://")) else ""


def make_backend() -> Backend:
    url = redis_url()
    if url:
        return RedisBackend(url)
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return FileBackend(settings.DATA_DIR / "limits")
    return DatabaseBackend()


# --- this process's limiter: one backend, waiting in turn, renewing leases --------------------------------


class _Turn:
    """The async calls of one event loop waiting for one endpoint: FIFO, and only the first one polls."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = asyncio.Lock()
        self.released = asyncio.Event()


class Limiter:
    """The process's view of the shared slots.

    The calls of a process that find the endpoint full queue up in order, and only the first of them
    polls the shared slots (from 2 ms up to POLL_SECONDS apart); a slot this process frees wakes it at
    once. So a process with more calls than slots keeps every slot busy without a storm of polls. Held
    leases are renewed by one thread every third of LEASE_SECONDS.
    """

    def __init__(self, shared: Backend):
        self.shared = shared
        self.local = LocalBackend()
        self.lock = threading.Lock()
        self.turns: dict[tuple[int, object], _Turn] = {}
        self.conditions: dict[object, threading.Condition] = {}
        self.held: dict[str, tuple[Backend, object]] = {}
        self.renewer: threading.Thread | None = None

    def backend(self, target: Target) -> tuple[Backend, object]:
        if target.endpoint_id is not None:
            return self.shared, target.endpoint_id
        return self.local, target.limiter_key or "|".join(
            str(part) for part in (target.model, target.api_base, target.max_concurrency, target.requests_per_minute)
        )

    # waking waiters

    def _condition(self, key) -> threading.Condition:
        with self.lock:
            if key not in self.conditions:
                self.conditions[key] = threading.Condition()
            return self.conditions[key]

    def _turn(self, key) -> _Turn:
        loop = asyncio.get_running_loop()
        with self.lock:
            found = self.turns.get((id(loop), key))
            if found is None or found.loop is not loop:
                found = self.turns[(id(loop), key)] = _Turn(loop)
            return found

    def _notify(self, key) -> None:
        condition = self.conditions.get(key)
        if condition is not None:
            with condition:
                condition.notify()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self.lock:
            turns = list(self.turns.items())
        for (_loop_id, turn_key), turn in turns:
            if turn_key != key or not turn.lock.locked():
                continue
            if turn.loop is running:
                turn.released.set()
            elif not turn.loop.is_closed():
                turn.loop.call_soon_threadsafe(turn.released.set)

    # leases

    def _hold(self, backend: Backend, key, token: str) -> None:
        if not backend.leases_expire:
            return
        with self.lock:
            self.held[token] = (backend, key)
            if self.renewer is None or not self.renewer.is_alive():
                self.renewer = threading.Thread(target=self._renew_forever, name="endpoint-leases", daemon=True)
                self.renewer.start()

    def _unhold(self, token: str) -> None:
        with self.lock:
            self.held.pop(token, None)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(LEASE_SECONDS / 3)
            with self.lock:
                held = list(self.held.items())
            by_backend: dict[int, tuple[Backend, list]] = {}
            for token, (backend, key) in held:
                by_backend.setdefault(id(backend), (backend, []))[1].append((key, token))
            for backend, leases in by_backend.values():
                try:
                    backend.renew(leases)
                except Exception:  # the next round tries again; a lease lost meanwhile only frees a slot early
                    import logging

                    logging.getLogger("apps.providers.gateway").warning("renewing slot leases failed", exc_info=True)

    # sync

    @contextmanager
    def slot(self, target: Target, *, wait: float | None, stopped: Callable[[], bool] | None = None) -> Iterator[None]:
        """Hold one of the endpoint's slots (after a place in this minute's budget) for one attempt."""
        backend, key = self.backend(target)
        deadline = None if wait is None else time.monotonic() + wait
        if target.requests_per_minute:
            while not backend.try_rate(key, target.requests_per_minute):
                self._waited(target, deadline, stopped, RATE_POLL_SECONDS)
        token = uuid.uuid4().hex
        condition = self._condition(key)
        delay = 0.002
        while not backend.try_acquire(key, target.max_concurrency, token):
            self._waited(target, deadline, stopped, 0)
            with condition:
                condition.wait(delay)
            delay = min(delay * 1.5, POLL_SECONDS * 5)
        if stopped is not None and stopped():  # it may have stopped (a budget spent) while this call waited
            backend.release(key, token)
            self._notify(key)
            raise CallNotStarted(target.name)
        self._hold(backend, key, token)
        try:
            yield
        finally:
            self._unhold(token)
            backend.release(key, token)
            self._notify(key)

    @staticmethod
    def _waited(target: Target, deadline: float | None, stopped, sleep: float) -> None:
        if stopped is not None and stopped():
            raise CallNotStarted(target.name)
        if deadline is not None and time.monotonic() >= deadline:
            raise GatewayError(ErrorKind.TIMEOUT, f"'{target.name}' is busy: no free slot within {target.timeout:g} s.")
        if sleep:
            time.sleep(sleep)

    # async

    @asynccontextmanager
    async def aslot(self, target: Target, *, wait: float | None, stopped: Callable[[], bool] | None = None):
        """The async twin of `slot`."""
        backend, key = self.backend(target)
        deadline = None if wait is None else time.monotonic() + wait
        if target.requests_per_minute:
            while not await backend.atry_rate(key, target.requests_per_minute):
                self._waited(target, deadline, stopped, 0)
                await asyncio.sleep(RATE_POLL_SECONDS)
        token = uuid.uuid4().hex
        turn = self._turn(key)
        if turn.lock.locked() or not await backend.atry_acquire(key, target.max_concurrency, token):
            async with turn.lock:
                delay = 0.002
                while not await backend.atry_acquire(key, target.max_concurrency, token):
                    self._waited(target, deadline, stopped, 0)
                    turn.released.clear()
                    try:
                        await asyncio.wait_for(turn.released.wait(), delay)
                    except TimeoutError:
                        pass
                    delay = min(delay * 1.5, POLL_SECONDS)
        if stopped is not None and stopped():  # it may have stopped (a budget spent) while this call waited
            await backend.arelease(key, token)
            self._notify(key)
            raise CallNotStarted(target.name)
        self._hold(backend, key, token)
        try:
            yield
        finally:
            self._unhold(token)
            await backend.arelease(key, token)
            self._notify(key)


_limiter_lock = threading.Lock()
_process_limiter: Limiter | None = None
_process_pid: int | None = None


def limiter() -> Limiter:
    """This process's limiter, made on first use (after a prefork worker has forked)."""
    global _process_limiter, _process_pid
    with _limiter_lock:
        if _process_limiter is None or _process_pid != os.getpid():
            if _process_limiter is not None and isinstance(_process_limiter.shared, FileBackend):
                _process_limiter.shared.forget_inherited()
            _process_limiter, _process_pid = Limiter(make_backend()), os.getpid()
        return _process_limiter


def reset_limiter() -> None:
    """Forget this process's limiter (tests that change the settings it was made from)."""
    global _process_limiter
    with _limiter_lock:
        if _process_limiter is not None:
            _process_limiter.shared.close()
        _process_limiter = None
