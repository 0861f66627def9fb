"""Checks behind /healthz: each returns None when the part works, else a short reason."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import connection


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means the database is down for us
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def check_cache() -> str | None:
    key = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "ok", timeout=5)
        value = cache.get(key)
        cache.delete(key)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None if value == "ok" else "cache did not return the value it was given"


def check_broker() -> str | None:
    from studio.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def _role_check(role: str):
    def check() -> str | None:
        from apps.core import heartbeats

        try:
            status = heartbeats.status(role)
        except Exception as exc:  # the database check names the cause
            return f"{type(exc).__name__}: {exc}"[:200]
        return None if status.ok else status.describe()

    check.__name__ = f"check_{role}"
    return check


check_worker = _role_check("worker")
check_beat = _role_check("beat")

# What the web process itself needs to answer requests (a load balancer's readiness: /healthz?scope=web).
WEB_CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache}
# The whole studio: the web's parts plus a live Celery worker and beat (their heartbeats; see heartbeats.py).
CHECKS = {**WEB_CHECKS, "worker": check_worker, "beat": check_beat}


def worker_status() -> dict[str, object]:
    """Detail for /healthz?workers=1: how many worker and beat processes are alive, and when one was last seen."""
    from apps.core import heartbeats

    detail: dict[str, object] = {}
    for role in ("worker", "beat"):
        status = heartbeats.status(role)
        detail[f"{role}s"] = {"alive": status.alive, "last_seen_seconds_ago": status.last_seen_seconds_ago}
    return detail
