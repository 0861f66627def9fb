"""Per-process caches of the delivery API, invalidated across processes through the database.

Apps fetch the same few prompts many times a second, so each web process keeps
what it needs to answer in memory: API keys by hash, and (prompt, label or
version) -> (version id, ETag). Nothing here is the truth; the database is.

Serialized documents are kept by ETag too: a version never changes, and the
ETag covers its labels, so a document is valid for as long as its ETag is.

Every change that can alter an answer leaves a trace in a small "stamp" read
from the database: a label move, creation, rollback or deletion appends a
LabelMove row, a new version a PromptVersion row, a revoked key changes the
count of revoked keys, a deleted prompt the count of prompts. Each process
reads the stamp at most every `API_CACHE_POLL_MS` (500 ms by default) and drops
everything when it differs, so a label move is visible to every web process
within that interval, with no message bus and whatever the cache backend is.
Entries also expire after `API_CACHE_MAX_AGE_SECONDS` as a safety net.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

MAX_ENTRIES = 20_000


@dataclass
class KeyInfo:
    """What a request needs to know about its API key; cached, so no database row is loaded per request."""

    id: int
    project_id: int
    project_slug: str
    scope: str
    prefix: str
    name: str
    revoked: bool
    touched_at: float = field(default=0.0, compare=False)

    @property
    def can_write(self) -> bool:
        return self.scope == "write"

    @property
    def can_ingest(self) -> bool:
        """An ingest key reads like a read key and may also send traces and feedback; a write key may too."""
        return self.scope in ("write", "ingest")


@dataclass(frozen=True)
class Resolved:
    """Where a (prompt, label) or (prompt, version) points, enough to answer If-None-Match."""

    version_id: int
    etag: str
    labels: tuple[str, ...] = ()
    # A label split for a canary: the canary arm's version, its content hash and weight (basis points).
    canary_id: int = 0
    canary_hash: str = ""
    canary_weight: int = 0
    canary_labels: tuple[str, ...] = ()


class _Caches:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, KeyInfo] = {}
        self.resolved: dict[tuple, Resolved] = {}
        self.bodies: dict[str, bytes] = {}
        self.stamp: tuple | None = None
        self.checked_at = 0.0
        self.filled_at = 0.0
        # Bumped at every flush: a value read from the database before a flush is not stored after it.
        self.epoch = 0

    def clear(self) -> None:
        with self.lock:
            self.keys = {}
            self.resolved = {}
            self.bodies = {}
            self.stamp = None
            self.checked_at = 0.0
            self.filled_at = time.monotonic()
            self.epoch += 1


_caches = _Caches()


def _read_stamp() -> tuple:
    from apps.accounts.models import ApiKey
    from apps.prompts.models import LabelMove, Prompt, PromptVersion

    sql = (
        f"SELECT (SELECT MAX(id) FROM {LabelMove._meta.db_table}),"  # noqa: S608 - table names from models
        f" (SELECT MAX(id) FROM {PromptVersion._meta.db_table}),"
        f" (SELECT COUNT(*) FROM {ApiKey._meta.db_table} WHERE revoked_at IS NOT NULL),"
        f" (SELECT COUNT(*) FROM {Prompt._meta.db_table})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return tuple(cursor.fetchone())


def refresh() -> None:
    """Drop the caches when the database stamp moved; reads the stamp at most every API_CACHE_POLL_MS."""
    now = time.monotonic()
    poll = settings.API_CACHE_POLL_MS / 1000
    if now - _caches.checked_at < poll and now - _caches.filled_at < settings.API_CACHE_MAX_AGE_SECONDS:
        return
    stamp = _read_stamp()
    with _caches.lock:
        if stamp != _caches.stamp or now - _caches.filled_at >= settings.API_CACHE_MAX_AGE_SECONDS:
            _caches.keys = {}
            _caches.resolved = {}
            _caches.bodies = {}
            _caches.filled_at = now
            _caches.epoch += 1
        _caches.stamp = stamp
        _caches.checked_at = now


def clear() -> None:
    """Forget everything in this process (tests use it between cases)."""
    _caches.clear()


def epoch() -> int:
    """Take it before reading the database; pass it to a put so a value read before a flush is dropped."""
    return _caches.epoch


def key_get(key_hash: str) -> KeyInfo | None:
    return _caches.keys.get(key_hash)


def key_put(key_hash: str, info: KeyInfo, *, read_at_epoch: int) -> None:
    with _caches.lock:
        if read_at_epoch != _caches.epoch:
            return
        if len(_caches.keys) >= MAX_ENTRIES:
            _caches.keys = {}
        _caches.keys[key_hash] = info


def resolved_get(cache_key: tuple) -> Resolved | None:
    return _caches.resolved.get(cache_key)


def resolved_put(cache_key: tuple, value: Resolved, *, read_at_epoch: int) -> None:
    with _caches.lock:
        if read_at_epoch != _caches.epoch:
            return
        if len(_caches.resolved) >= MAX_ENTRIES:
            _caches.resolved = {}
        _caches.resolved[cache_key] = value


def body_get(etag: str) -> bytes | None:
    """The serialized document with this ETag (an ETag names exactly one document)."""
    return _caches.bodies.get(etag)


def body_put(etag: str, body: bytes, *, read_at_epoch: int) -> None:
    with _caches.lock:
        if read_at_epoch != _caches.epoch:
            return
        if len(_caches.bodies) >= MAX_ENTRIES // 10:
            _caches.bodies = {}
        _caches.bodies[etag] = body


def stats() -> dict[str, Any]:
    return {
        "keys": len(_caches.keys),
        "resolved": len(_caches.resolved),
        "bodies": len(_caches.bodies),
        "stamp": _caches.stamp,
    }
