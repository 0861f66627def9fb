"""Liveness of the Celery worker and beat processes, independent of what their queues are doing.

A daemon thread in each worker's main process and in the beat process writes a WorkerHeartbeat row every
HEARTBEAT_SECONDS. /healthz, `runstudio` and the experiment page read them: a process whose row is older
than HEARTBEAT_STALE_SECONDS is dead or frozen (a thread of a SIGSTOPped process stops too).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def beat(*, role: str, hostname: str, pid: int | None = None) -> None:
    from apps.core.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"role": role, "pid": pid or os.getpid(), "seen_at": now}
    )
    # Rows of processes gone for a day (a pod that was replaced) are forgotten, not reported as dead forever.
    WorkerHeartbeat.objects.filter(role=role, seen_at__lt=now - timedelta(days=1)).delete()


def withdraw(*, hostname: str) -> None:
    """A process that stops cleanly removes its row: a worker scaled down on purpose is not a dead one."""
    from apps.core.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(hostname=hostname, pid=os.getpid()).delete()


def start_thread(*, role: str, hostname: str) -> threading.Event:
    """Beat now and then every HEARTBEAT_SECONDS until the returned event is set; never raises into its host."""
    stop = threading.Event()

    def run() -> None:
        import django

        django.setup()
        while True:
            try:
                close_old_connections()
                beat(role=role, hostname=hostname)
            except Exception:  # the database may be down for a moment; the next beat tries again
                logger.warning("%s heartbeat of %s could not be written", role, hostname, exc_info=True)
            if stop.wait(settings.HEARTBEAT_SECONDS):
                break
        close_old_connections()

    threading.Thread(target=run, name=f"{role}-heartbeat", daemon=True).start()
    return stop


@dataclass(frozen=True)
class RoleStatus:
    role: str
    state: str  # "ok", "down" (every known process is stale) or "none" (no process ever said it was alive)
    alive: int
    last_seen_seconds_ago: float | None

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def describe(self) -> str:
        if self.state == "none":
            return f"no Celery {self.role} has started"
        if self.state == "down":
            return f"no Celery {self.role} alive: the last one was seen {self.last_seen_seconds_ago:.0f} s ago"
        return f"{self.alive} {self.role}{'s' if self.alive != 1 else ''} alive"


def status(role: str) -> RoleStatus:
    from apps.core.models import WorkerHeartbeat

    now = timezone.now()
    seen = list(WorkerHeartbeat.objects.filter(role=role).values_list("seen_at", flat=True))
    if not seen:
        return RoleStatus(role, "none", 0, None)
    ages = [(now - at).total_seconds() for at in seen]
    alive = sum(1 for age in ages if age <= settings.HEARTBEAT_STALE_SECONDS)
    return RoleStatus(role, "ok" if alive else "down", alive, round(min(ages), 1))
