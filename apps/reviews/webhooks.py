"""Webhook events: which URLs are allowed, the signed body, and queuing deliveries after commit."""

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

from apps.reviews.models import Webhook, WebhookDelivery, WebhookEvent

SIGNATURE_HEADER = "X-Studio-Signature"


class WebhookURLRefused(Exception):
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
    deliveries = []
    for webhook in Webhook.objects.filter(project_id=project_id, active=True):
        if event != WebhookEvent.PING and event not in webhook.events:
            continue
        deliveries.append(_delivery(webhook, event, data))
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
    from apps.reviews.tasks import deliver_webhook

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
