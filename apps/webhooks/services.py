"""Webhooks: which URLs are allowed (the SSRF guard), the signed body, queuing deliveries after commit, and the
project admin's writes (create, pause, delete, ping, send again), each audited in its transaction."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project, Role
from apps.accounts.permissions import require_role
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.webhooks import selectors
from apps.webhooks.models import Webhook, WebhookDelivery, WebhookEvent

SIGNATURE_HEADER = "X-Studio-Signature"


class WebhookError(Exception):
    """A refused webhook write; the message is shown to the user as is."""


class WebhookURLRefused(WebhookError):
    """A webhook URL the studio will not call; the message names why."""


def sign(secret: str, body: bytes) -> str:
    """The value of the X-Studio-Signature header: HMAC-SHA256 of the body with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, resolve: bool = True) -> str:
    """Refuse anything but http(s) to a host name, and (unless WEBHOOK_ALLOW_PRIVATE) non-public addresses.

    Checked when the webhook is saved and again before each delivery, so a host
    name that later resolves to an internal address is refused then too.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookURLRefused("A webhook URL must start with http:// or https://.")
    if not parts.hostname:
        raise WebhookURLRefused("A webhook URL needs a host name.")
    if parts.username or parts.password:
        raise WebhookURLRefused("Put no user name or password in a webhook URL; the signature authenticates us.")
    if settings.WEBHOOK_ALLOW_PRIVATE or not resolve:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise WebhookURLRefused(f"The host {parts.hostname} does not resolve.")
    for info in infos:
        address = info[4][0]
        if not _is_public(address):
            raise WebhookURLRefused(
                f"{parts.hostname} resolves to {address}, a private or local address; webhooks may only call "
                "public addresses (set WEBHOOK_ALLOW_PRIVATE=true to allow internal targets)."
            )
    return url


def emit(*, project_id: int, event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Record one delivery per subscribed active webhook and enqueue them when the transaction commits."""
    deliveries = [
        _delivery(webhook, event, data) for webhook in selectors.webhooks_subscribed(project_id=project_id, event=event)
    ]
    if deliveries:
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return deliveries


def _delivery(webhook: Webhook, event: str, data: dict[str, Any]) -> WebhookDelivery:
    delivery_id = str(uuid.uuid4())
    payload = {
        "id": delivery_id,
        "event": str(event),
        "created_at": timezone.now().isoformat(),
        "project": webhook.project.slug,
        "data": data,
    }
    body = json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return WebhookDelivery.objects.create(webhook=webhook, event=str(event), delivery_id=delivery_id, body=body)


def _enqueue(delivery_ids: list[int]) -> None:
    from apps.webhooks.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        deliver_webhook.apply_async(args=[delivery_id], queue="interactive")


def enqueue_after_commit(delivery: WebhookDelivery) -> None:
    transaction.on_commit(lambda: _enqueue([delivery.pk]))


def on_version_saved(version, actor) -> None:
    """prompts calls this inside the save's transaction."""
    emit(
        project_id=version.prompt.project_id,
        event=WebhookEvent.VERSION_SAVED,
        data={
            "prompt": version.prompt.name,
            "version": version.number,
            "content_hash": version.content_hash,
            "message": version.message,
            "author": version.author_repr,
        },
    )


# --- a project admin's writes ---------------------------------------------------------------


@transaction.atomic
def webhook_create(*, project: Project, url: str, events: list[str], actor: Any, description: str = "") -> Webhook:
    require_role(project_id=project.pk, actor=actor, role=Role.ADMIN, what="Managing webhooks")
    try:
        url = check_url(url)
    except WebhookURLRefused:
        raise
    events = [e for e in WebhookEvent.values if e in set(events) and e != WebhookEvent.PING]
    if not events:
        raise WebhookError("Choose at least one event to send.")
    webhook = Webhook.objects.create(
        project=project, url=url, events=events, description=description.strip()[:200], created_by=actor_user(actor)
    )
    audit_record(
        project_id=project.pk, actor=actor, action="webhook.created", obj=webhook, after={"url": url, "events": events}
    )
    return webhook


@transaction.atomic
def webhook_set_active(*, webhook: Webhook, active: bool, actor: Any) -> Webhook:
    require_role(project_id=webhook.project_id, actor=actor, role=Role.ADMIN, what="Managing webhooks")
    if webhook.active != active:
        webhook.active = active
        webhook.save(update_fields=["active"])
        audit_record(
            project_id=webhook.project_id,
            actor=actor,
            action="webhook.changed",
            obj=webhook,
            before={"active": not active},
            after={"active": active},
        )
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: Any) -> None:
    require_role(project_id=webhook.project_id, actor=actor, role=Role.ADMIN, what="Managing webhooks")
    audit_record(
        project_id=webhook.project_id,
        actor=actor,
        action="webhook.deleted",
        obj=webhook,
        before={"url": webhook.url, "events": webhook.events},
    )
    webhook.delete()


@transaction.atomic
def webhook_ping(*, webhook: Webhook, actor: Any) -> WebhookDelivery:
    require_role(project_id=webhook.project_id, actor=actor, role=Role.ADMIN, what="Managing webhooks")
    delivery = _delivery(
        webhook, WebhookEvent.PING, {"message": "Hello from Prompt Studio", "actor": actor_repr(actor)}
    )
    enqueue_after_commit(delivery)
    return delivery


@transaction.atomic
def delivery_retry(*, delivery: WebhookDelivery, actor: Any) -> WebhookDelivery:
    """Send a failed delivery again (same body, same id, a fresh set of attempts)."""
    require_role(project_id=delivery.webhook.project_id, actor=actor, role=Role.ADMIN, what="Managing webhooks")
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status != "failed":
        raise WebhookError("Only a failed delivery can be sent again.")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.save(update_fields=["status", "attempts"])
    enqueue_after_commit(delivery)
    return delivery
