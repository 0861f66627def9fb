from __future__ import annotations

from typing import Any

from django.db import models

from apps.audit import request_context
from apps.audit.models import AuditEvent


def actor_user(actor: Any):
    """The user behind an actor: a user, anything with `audit_repr` (an API key), or a string (a job)."""
    if actor is None or isinstance(actor, str):
        return None
    return getattr(actor, "audit_user", None) if hasattr(actor, "audit_repr") else actor


def actor_repr(actor: Any) -> str:
    """How an actor is shown in history and audit rows."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return actor.audit_repr if hasattr(actor, "audit_repr") else actor.get_username()


def audit_record(
    *,
    project_id: int | None,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records."""
    user, shown_as = actor_user(actor), actor_repr(actor)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    context = request_context.current()
    return AuditEvent.objects.create(
        project_id=project_id,
        actor=user,
        actor_repr=shown_as[:200],
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:300],
        before=before,
        after=after,
        request_id=context.request_id,
        ip=context.ip,
    )
