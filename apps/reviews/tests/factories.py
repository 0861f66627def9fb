"""Helpers that build review state through the real services."""

from __future__ import annotations

import factory

from apps.accounts.tests.factories import ProjectFactory
from apps.prompts.models import Label
from apps.reviews import services
from apps.reviews.models import ReleasePolicy


class ReleasePolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleasePolicy

    project = factory.SubFactory(ProjectFactory)
    label_name = "production"
    protected = True
    required_approvals = 1


def label_version_id(prompt, label_name: str = "production") -> int | None:
    label = Label.objects.filter(prompt=prompt, name=label_name).first()
    return label.version_id if label else None


def approved(version, *, requester, approver, label_name: str = "production"):
    review = services.review_request_create(version=version, label_name=label_name, actor=requester)
    return services.review_approve(review=review, actor=approver)


def release(version, *, requester, approver, label_name: str = "production"):
    """Request, approve and release `version` under the label; returns the released review."""
    review = approved(version, requester=requester, approver=approver, label_name=label_name)
    services.review_release(
        review=review, actor=requester, expected_current_version_id=label_version_id(version.prompt, label_name)
    )
    review.refresh_from_db()
    return review
