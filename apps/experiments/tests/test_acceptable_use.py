"""The project's acceptable-use statement: set by an admin, confirmed by the approver, both audited."""

import pytest

from apps.audit.models import AuditEvent
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews import services
from apps.reviews.models import ReviewStatus
from apps.reviews.tests.factories import ReleasePolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_an_approval_needs_the_statement_confirmed(project, member, client_for):
    author, reviewer, admin = member("editor", "alice"), member("reviewer", "rita"), member("admin", "adam")
    ReleasePolicyFactory(project=project)
    response = client_for(admin).post(f"/p/{project.slug}/experiments/probes/acceptable-use/",
                                      {"statement": "No decisions about credit without a human."})  # fmt: skip
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="policy.acceptable_use_changed").exists()
    version = make_version(PromptFactory(project=project, name="p"), "Hi {{ x }}", actor=author, samples={"x": "a"})
    review = services.review_request_create(version=version, label_name="production", actor=author)
    client = client_for(reviewer)
    page = client.get(f"/p/{project.slug}/reviews/{review.pk}/")
    assert b"No decisions about credit without a human." in page.content and b"acceptable-use-confirm" in page.content
    client.post(f"/p/{project.slug}/reviews/{review.pk}/decide/", {"decision": "approve", "body": ""})
    review.refresh_from_db()
    assert review.status != ReviewStatus.APPROVED
    client.post(f"/p/{project.slug}/reviews/{review.pk}/decide/",
                {"decision": "approve", "body": "", "acceptable_use": "confirmed"})  # fmt: skip
    review.refresh_from_db()
    assert review.status == ReviewStatus.APPROVED
    event = AuditEvent.objects.get(action="review.acceptable_use_confirmed")
    assert len(event.after["statement_sha256"]) == 64


def test_only_an_admin_sets_the_statement(project, member, client_for):
    url = f"/p/{project.slug}/experiments/probes/acceptable-use/"
    assert client_for(member("editor", "ed")).post(url, {"statement": "x"}).status_code == 403
    response = client_for(member("admin", "ada")).post(url, {"statement": "x" * 5001})
    assert response.status_code == 400 and b"at most 5,000 characters" in response.content
