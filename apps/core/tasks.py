from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


@shared_task(name="core.heartbeat", ignore_result=True)
def heartbeat(token: str = "") -> None:
    """Record that a worker is alive. Running it twice only moves the timestamp."""
    from celery import current_task

    hostname = (current_task.request.hostname if current_task else None) or "unknown"
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"seen_at": timezone.now(), "token": token})
