"""An append-only log of governance events.

Rows are written by `audit.services.audit_record` inside the transaction of the
change they describe. Nothing updates or deletes them: the model and its
queryset refuse it, and on both PostgreSQL and SQLite triggers refuse UPDATE
(also an upsert's) and DELETE, whichever manager or raw SQL sends it.
Other apps' objects are named by type and id strings, never by foreign key, so
the audit app depends on Django alone and keeps its rows after the object goes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditLogIsAppendOnly(Exception):
    pass


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("Audit events cannot be changed.")

    def delete(self):
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")

    def bulk_update(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit events cannot be changed.")

    def bulk_create(self, objs, *args, update_conflicts: bool = False, **kwargs):
        if update_conflicts:
            raise AuditLogIsAppendOnly("Audit events cannot be changed.")
        return super().bulk_create(objs, *args, **kwargs)


class AuditEvent(models.Model):
    # The project is a plain id so audit rows outlive a deleted project.
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # Deleting a user leaves its events as they are: actor_id keeps the old id and actor_repr the name.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_repr = models.CharField(max_length=200, help_text="Who acted, as shown at the time (user or API key).")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_repr} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")
