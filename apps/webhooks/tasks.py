"""Webhook deliveries: one task per delivery, retried with exponential backoff."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.webhooks.models import DeliveryStatus, WebhookDelivery
from apps.webhooks.services import SIGNATURE_HEADER, WebhookURLRefused, check_url, sign

logger = logging.getLogger(__name__)


def backoff_seconds(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: base, 2×base, 4×base, ... capped at an hour."""
    return min(settings.WEBHOOK_RETRY_BASE_SECONDS * (2 ** (attempt - 1)), 3600)


@shared_task(
    name="reviews.deliver_webhook",  # its old name: deliveries queued before an upgrade still run
    bind=True,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_webhook(self, delivery_id: int) -> None:
    """POST one delivery's signed body to its webhook; on failure schedule the next attempt with backoff.

    Run twice, it does nothing the second time if the first succeeded or gave
    up (the row's status is checked under a lock before sending). A crash
    between the POST and the status update can send the same body twice; it
    carries the same `id` and X-Studio-Delivery header, so receivers drop the
    duplicate. A delivery whose row or webhook is gone is skipped.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("webhook")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
            return
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        delivery.save(update_fields=["attempts", "last_attempt_at"])
    webhook = delivery.webhook
    code, error, refused = _post(webhook.url, webhook.secret, delivery)
    delivery.response_code = code
    delivery.last_error = error[:500]
    if code is not None and 200 <= code < 300:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = timezone.now()
    elif refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or not webhook.active:
        # A refused address (the SSRF guard) will be refused again: retrying only delays the failure.
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.status = DeliveryStatus.RETRYING
    delivery.save(update_fields=["response_code", "last_error", "status", "delivered_at"])
    if delivery.status == DeliveryStatus.RETRYING:
        countdown = backoff_seconds(delivery.attempts)
        logger.info("webhook delivery %s failed (%s); retry in %ss", delivery.pk, error or code, countdown)
        deliver_webhook.apply_async(args=[delivery.pk], countdown=countdown, queue="interactive")


def _post(url: str, secret: str, delivery: WebhookDelivery) -> tuple[int | None, str, bool]:
    """(status code, error, refused): refused is True when the URL was not called at all."""
    try:
        check_url(url)
    except WebhookURLRefused as exc:
        return None, f"Not sent: {exc}", True
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PromptStudio-Webhooks/1",
        "X-Studio-Event": delivery.event,
        "X-Studio-Delivery": delivery.delivery_id,
        SIGNATURE_HEADER: sign(secret, body),
    }
    try:
        # No redirects: a redirect could point the request at an internal address.
        response = httpx.post(url, content=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", False
    if 200 <= response.status_code < 300:
        return response.status_code, "", False
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}", False
