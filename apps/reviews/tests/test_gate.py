"""Every path that moves or deletes a protected label meets the release gate."""

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, LabelMove
from apps.reviews import gate, services
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import approved, release

pytestmark = pytest.mark.django_db


def _production(prompt):
    return Label.objects.filter(prompt=prompt, name="production").first()


def test_it_refuses_a_direct_service_move_even_by_an_admin(prompt, policy, cast):
    with pytest.raises(prompt_services.LabelMoveRefused, match="production is protected: a review is required"):
        prompt_services.label_move(prompt=prompt, label_name="production", version=version(prompt, 1), actor=cast.admin)
    assert _production(prompt) is None
    assert not LabelMove.objects.exists()


def test_it_refuses_an_api_key_or_a_system_actor(prompt, policy):
    class ApiKey:
        audit_repr = "key ps_abc123 (read-write)"
        audit_user = None

    for actor in (ApiKey(), "system", None):
        with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
            prompt_services.label_move(prompt=prompt, label_name="production", version=version(prompt, 1), actor=actor)
    assert _production(prompt) is None


def test_it_refuses_a_management_command(prompt, policy, cast):
    code = (
        "from apps.prompts.models import Prompt; from apps.prompts import services as s; "
        "p = Prompt.objects.get(name='greet'); "
        "s.label_move(prompt=p, label_name='production', version=p.versions.get(number=2), actor='manage.py shell')"
    )
    with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
        call_command("shell", command=code)
    assert _production(prompt) is None


def test_it_refuses_to_delete_a_protected_label(prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    with pytest.raises(prompt_services.LabelMoveRefused, match="protected by a release policy and cannot be deleted"):
        prompt_services.label_delete(prompt=prompt, label_name="production", actor=cast.admin)
    assert _production(prompt).version.number == 1


def test_it_refuses_an_approved_version_moved_outside_the_release(prompt, policy, cast):
    """Approval alone opens nothing: the move must be the review's release."""
    approved(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
        prompt_services.label_move(prompt=prompt, label_name="production", version=version(prompt, 2), actor=cast.admin)


def test_a_forged_release_marker_only_opens_the_approved_version(prompt, policy, cast):
    review = approved(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    with gate.releasing(review.pk):
        with pytest.raises(prompt_services.LabelMoveRefused, match="not the release of its review"):
            prompt_services.label_move(
                prompt=prompt, label_name="production", version=version(prompt, 3), actor=cast.admin
            )
    pending = services.review_request_create(version=version(prompt, 3), label_name="production", actor=cast.author)
    with gate.releasing(pending.pk):
        with pytest.raises(prompt_services.LabelMoveRefused, match="needs 1 approval"):
            prompt_services.label_move(
                prompt=prompt, label_name="production", version=version(prompt, 3), actor=cast.admin
            )
    assert _production(prompt) is None


def test_unprotected_labels_move_freely(prompt, policy, cast):
    prompt_services.label_move(prompt=prompt, label_name="staging", version=version(prompt, 3), actor=cast.author)
    prompt_services.label_delete(prompt=prompt, label_name="staging", actor=cast.author)


def test_it_allows_a_rollback_to_a_released_version_and_audits_it(prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    release(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    prompt_services.label_move(
        prompt=prompt, label_name="production", version=version(prompt, 1), actor=cast.author, rollback=True
    )
    assert _production(prompt).version.number == 1
    event = AuditEvent.objects.get(action="release.rolled_back")
    assert event.actor_repr == "alice"
    assert event.before == {"version": 3} and event.after["version"] == 1
    assert AuditEvent.objects.filter(action="label.rolled_back").count() == 1


def test_it_refuses_a_rollback_to_a_version_never_released(prompt, policy, cast):
    release(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
        prompt_services.label_move(
            prompt=prompt, label_name="production", version=version(prompt, 2), actor=cast.admin, rollback=True
        )
    assert _production(prompt).version.number == 3


def test_a_release_under_another_label_does_not_open_a_rollback(prompt, policy, cast, project):
    from apps.reviews.tests.factories import ReleasePolicyFactory

    ReleasePolicyFactory(project=project, label_name="canary")
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer, label_name="canary")
    release(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    with pytest.raises(prompt_services.LabelMoveRefused):
        prompt_services.label_move(
            prompt=prompt, label_name="production", version=version(prompt, 2), actor=cast.admin, rollback=True
        )
