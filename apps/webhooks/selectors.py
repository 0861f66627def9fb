"""Reads of webhooks and their deliveries. Every read is scoped to a project."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Project
from apps.webhooks.models import Webhook, WebhookDelivery, WebhookEvent


def webhooks_subscribed(*, project_id: int, event: str) -> list[Webhook]:
    """The project's active webhooks that take `event` (every one takes a ping)."""
    active = Webhook.objects.filter(project_id=project_id, active=True).select_related("project")
    return [w for w in active if event == WebhookEvent.PING or event in w.events]


def webhook_list(*, project: Project) -> QuerySet[Webhook]:
    return Webhook.objects.filter(project=project).order_by("created_at")


def webhook_get(*, project: Project, pk: int) -> Webhook:
    webhook = Webhook.objects.filter(project=project, pk=pk).first()
    if webhook is None:
        raise Http404("No such webhook in this project.")
    return webhook


def delivery_list(*, webhook: Webhook, limit: int = 100) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id")[:limit]


def delivery_get(*, project: Project, pk: int) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.select_related("webhook").filter(webhook__project=project, pk=pk).first()
    if delivery is None:
        raise Http404("No such delivery in this project.")
    return delivery
