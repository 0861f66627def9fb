"""Role × action: viewer, editor, reviewer, admin and a member of another project, through the studio's pages.

Each cell asserts the answer (allowed, 403 or 404) and the effect that a user would notice.
"""

import pytest

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.audit.models import AuditEvent
from apps.prompts.models import Label
from apps.reviews import services
from apps.reviews.models import ReleasePolicy, ReviewRequest, ReviewStatus
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import approved, label_version_id, release

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "editor", "reviewer", "admin", "outsider"]


@pytest.fixture
def actor(request, member):
    role = request.param
    if role == "outsider":
        # An admin of another project: powerful there, a stranger here.
        return MembershipFactory(project=ProjectFactory(slug="elsewhere"), role="admin", user__username="olga").user
    return member(role, f"the-{role}")


def _post(client, url, data=None):
    return client.post(url, data or {})


def _request(client, prompt, cast):
    response = _post(client, "/p/acme/reviews/request/greet/2/", {"label": "production", "description": "ship it"})
    return response, ReviewRequest.objects.filter(version=version(prompt, 2)).exists()


def _approve(client, prompt, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    response = _post(client, f"/p/acme/reviews/{review.pk}/decide/", {"decision": "approve", "body": "fine"})
    review.refresh_from_db()
    return response, review.status == ReviewStatus.APPROVED


def _request_changes(client, prompt, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    data = {"decision": "request_changes", "body": "Please be more formal."}
    response = _post(client, f"/p/acme/reviews/{review.pk}/decide/", data)
    review.refresh_from_db()
    return response, review.status == ReviewStatus.CHANGES_REQUESTED


def _release(client, prompt, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    review = approved(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    data = {"expected_version": str(label_version_id(prompt))}
    response = _post(client, f"/p/acme/reviews/{review.pk}/release/", data)
    return response, label_version_id(prompt) == version(prompt, 2).pk


def _rollback(client, prompt, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    data = {"label": "production", "version": "1", "rollback": "1", "reason": "incident"}
    response = _post(client, "/p/acme/prompts/greet/labels/move/", data)
    return response, label_version_id(prompt) == version(prompt, 1).pk


def _edit_policy(client, prompt, cast):
    data = {"label_name": "production", "protected": "on", "required_approvals": "2", "approver_roles": ["reviewer"]}
    response = _post(client, "/p/acme/reviews/policies/save/", data)
    return response, ReleasePolicy.objects.get(label_name="production").required_approvals == 2


ACTIONS = {
    "request": (_request, {"editor", "reviewer", "admin"}),
    "approve": (_approve, {"reviewer", "admin"}),
    "request_changes": (_request_changes, {"reviewer", "admin"}),
    "release": (_release, {"editor", "reviewer", "admin"}),
    "rollback": (_rollback, {"editor", "reviewer", "admin"}),
    "edit_policy": (_edit_policy, {"admin"}),
}


@pytest.mark.parametrize("actor", ROLES, indirect=True)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_role_action_matrix(action, actor, client_for, prompt, policy, cast):
    perform, allowed_roles = ACTIONS[action]
    role = actor.username.removeprefix("the-") if actor.username != "olga" else "outsider"
    response, happened = perform(client_for(actor), prompt, cast)
    if role in allowed_roles:
        assert response.status_code == 302, (action, role, response.status_code)
        assert happened, f"{role} should be able to {action}"
    else:
        expected = 404 if role == "outsider" else 403
        assert response.status_code == expected, (action, role, response.status_code)
        assert not happened, f"{role} must not be able to {action}"


def test_the_matrix_covers_every_cell():
    assert len(ACTIONS) * len(ROLES) == 30


def test_a_refused_cell_leaves_no_audit_event(client_for, member, prompt, policy, cast):
    viewer = member("viewer", "vic")
    before = AuditEvent.objects.count()
    _edit_policy(client_for(viewer), prompt, cast)
    assert AuditEvent.objects.count() == before
    assert not Label.objects.filter(name="production").exists()
