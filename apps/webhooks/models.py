"""Webhooks of a project, and each event delivered to one of them (signed, retried, logged)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from apps.accounts.models import Project


class WebhookEvent(models.TextChoices):
    VERSION_SAVED = "version.saved", "Version saved"
    REVIEW_REQUESTED = "review.requested", "Review requested"
    REVIEW_APPROVED = "review.approved", "Approved"
    CHANGES_REQUESTED = "review.changes_requested", "Changes requested"
    RELEASED = "label.released", "Released"
    ROLLED_BACK = "label.rolled_back", "Rolled back"
    ALERT_OPENED = "alert.opened", "Alert opened"
    ALERT_RESOLVED = "alert.resolved", "Alert resolved"
    CANARY_STARTED = "canary.started", "Canary started"
    CANARY_STEPPED = "canary.stepped", "Canary moved to its next step"
    CANARY_PROMOTED = "canary.promoted", "Canary promoted to 100%"
    CANARY_ROLLED_BACK = "canary.rolled_back", "Canary rolled back"
    CANARY_PAUSED = "canary.paused", "Canary paused or resumed"
    PING = "ping", "Ping (test)"


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class Webhook(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=500)
    events = models.JSONField(default=list)
    # Needed in clear to sign each body; shown to the admin once, when it is made.
    secret = models.CharField(max_length=64, default=new_webhook_secret)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reviews_webhook"  # the table predates the app (moved out of reviews)
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RETRYING = "retrying", "retrying"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class WebhookDelivery(models.Model):
    """One event sent to one webhook. `body` is the exact bytes signed, so every attempt sends the same."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    delivery_id = models.CharField(max_length=36, unique=True)
    body = models.TextField()
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "reviews_webhookdelivery"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook.url} ({self.status})"
