"""Review emails, sent through Django's email backend after the transaction commits."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.urls import reverse

from apps.reviews.models import ReviewRequest

logger = logging.getLogger(__name__)


def _review_url(review: ReviewRequest) -> str:
    return settings.STUDIO_BASE_URL.rstrip("/") + reverse("reviews:detail", args=[review.project.slug, review.pk])


def notify(*, review: ReviewRequest, recipients, subject: str, text: str, actor=None) -> None:
    """Email each recipient (users with an address, never the actor) once the change is committed."""
    actor_id = getattr(actor, "pk", None)
    addresses = sorted({u.email for u in recipients if u is not None and u.email and u.pk != actor_id})
    if not addresses:
        return
    subject = f"[{review.project.name}] {subject}"
    body = f"{text}\n\n{review.prompt.name} v{review.version.number} → {review.label_name}\n{_review_url(review)}\n"
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in addresses]

    def send() -> None:
        try:
            send_mass_mail(messages, fail_silently=False)
        except Exception:
            # A mail server outage must not fail the review action that already committed.
            logger.exception("could not send review email for review %s", review.pk)

    transaction.on_commit(send)
