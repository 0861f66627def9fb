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


CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache}


def worker_status() -> dict[str, object]:
    """Informational: when a worker last answered (a stale heartbeat does not fail /healthz)."""
    from django.utils import timezone

    from apps.core.models import WorkerHeartbeat

    last = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if last is None:
        return {"workers": "unknown"}
    return {"workers": {"last_seen_seconds_ago": round((timezone.now() - last.seen_at).total_seconds(), 1)}}
