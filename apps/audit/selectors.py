from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_event_list(
    *,
    project_id: int,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_query: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(project_id=project_id)
    if actor:
        events = events.filter(actor_repr__icontains=actor)
    if action:
        events = events.filter(action=action)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_query:
        events = events.filter(object_repr__icontains=object_query)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    return events


def audit_action_choices(*, project_id: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(project_id=project_id).order_by("action").values_list("action", flat=True).distinct()
    )
