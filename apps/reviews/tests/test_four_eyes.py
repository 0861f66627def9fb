"""Four eyes: nobody approves their own version, and an approval counts only for the exact version it was given on."""

import pytest

from apps.accounts.permissions import Forbidden
from apps.prompts.tests.factories import make_version
from apps.reviews import selectors, services
from apps.reviews.models import ReviewStatus
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import label_version_id

pytestmark = pytest.mark.django_db


def test_the_author_cannot_approve_even_as_admin(prompt, policy, cast, project):
    own = make_version(prompt, "Admin's own {{ name }}", actor=cast.admin, samples={"name": "Dana"})
    review = services.review_request_create(version=own, label_name="production", actor=cast.author)
    with pytest.raises(Forbidden, match="You wrote this version"):
        services.review_approve(review=review, actor=cast.admin)
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN
    with pytest.raises(services.ReviewError, match="needs 1 approval"):
        services.review_release(review=review, actor=cast.admin, expected_current_version_id=None)


def test_the_requester_cannot_approve_their_own_request(prompt, policy, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.reviewer)
    with pytest.raises(Forbidden, match="asked for its release"):
        services.review_approve(review=review, actor=cast.reviewer)


def test_an_approval_of_an_older_version_does_not_count_for_a_newer_one(prompt, policy, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_approve(review=review, actor=cast.reviewer)
    newer = services.review_update(review=review, version=version(prompt, 3), actor=cast.author)
    review.refresh_from_db()
    assert review.status == ReviewStatus.SUPERSEDED
    state = selectors.approval_state(review=newer)
    assert state.approvals == [] and not state.met
    with pytest.raises(services.ReviewError, match="needs 1 approval"):
        services.review_release(review=newer, actor=cast.author, expected_current_version_id=None)
    # The superseded request, though approved, can no longer be released either.
    with pytest.raises(services.ReviewError, match="superseded"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)


def test_a_separate_request_for_a_newer_version_starts_with_no_approvals(prompt, policy, cast):
    first = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_approve(review=first, actor=cast.reviewer)
    second = services.review_request_create(version=version(prompt, 3), label_name="production", actor=cast.author)
    assert selectors.approval_state(review=second).approvals == []


def test_a_required_count_of_two_needs_two_different_people(prompt, policy, cast, member):
    policy.required_approvals = 2
    policy.save()
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_approve(review=review, actor=cast.reviewer)
    with pytest.raises(services.ReviewError, match="already approved"):
        services.review_approve(review=review, actor=cast.reviewer)
    with pytest.raises(services.ReviewError, match="needs 2 approvals"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)
    services.review_approve(review=review, actor=cast.admin)
    services.review_release(review=review, actor=cast.author, expected_current_version_id=None)
    assert label_version_id(prompt) == version(prompt, 2).pk


def test_an_approver_who_loses_the_role_no_longer_counts(prompt, policy, cast, project):
    from apps.accounts.models import Membership

    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_approve(review=review, actor=cast.reviewer)
    Membership.objects.filter(user=cast.reviewer, project=project).update(role="editor")
    with pytest.raises(services.ReviewError, match="needs 1 approval"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)


def test_changes_requested_block_the_release_until_that_reviewer_approves(prompt, policy, cast, member):
    second = member("reviewer", "ron")
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_request_changes(review=review, actor=second, body="Too casual.")
    services.review_approve(review=review, actor=cast.reviewer)
    review.refresh_from_db()
    assert review.status == ReviewStatus.CHANGES_REQUESTED
    with pytest.raises(services.ReviewError, match="Changes were requested by ron"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)
    services.review_approve(review=review, actor=second)
    review.refresh_from_db()
    assert review.status == ReviewStatus.APPROVED


def test_requesting_changes_needs_a_comment(prompt, policy, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    with pytest.raises(services.ReviewError, match="needs a comment"):
        services.review_request_changes(review=review, actor=cast.reviewer, body="   ")


def test_an_api_key_cannot_approve(prompt, policy, cast):
    class ApiKey:
        audit_repr = "key ps_abc"
        audit_user = None

    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    with pytest.raises(Forbidden, match="signed-in person"):
        services.review_approve(review=review, actor=ApiKey())


def test_the_policy_is_rechecked_at_release_time(prompt, policy, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    services.review_approve(review=review, actor=cast.reviewer)
    services.policy_save(
        project=prompt.project,
        label_name="production",
        protected=True,
        required_approvals=2,
        approver_roles=["reviewer", "admin"],
        actor=cast.admin,
    )
    with pytest.raises(services.ReviewError, match="needs 2 approvals"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)
