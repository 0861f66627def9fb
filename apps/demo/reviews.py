"""Demo data: `production` protected, the seeded production versions released through reviews, one review open."""

from __future__ import annotations

from apps.accounts.models import Project, Role
from apps.demo.prompts import released_versions
from apps.demo.users import demo_user
from apps.prompts.models import Prompt
from apps.reviews import services
from apps.reviews.models import ReleasePolicy


def seed_demo_reviews(*, project: Project, actor) -> None:
    """Idempotent: does nothing once the demo's production policy exists."""
    if ReleasePolicy.objects.filter(project=project, label_name="production").exists():
        return
    reviewer = demo_user("reviewer")
    services.policy_save(
        project=project,
        label_name="production",
        protected=True,
        required_approvals=1,
        approver_roles=[Role.REVIEWER, Role.ADMIN],
        actor=actor,
    )
    for name, number in released_versions().items():
        prompt = Prompt.objects.get(project=project, name=name)
        review = services.review_request_create(
            version=prompt.versions.get(number=number),
            label_name="production",
            description="First release of the demo.",
            actor=actor,
        )
        services.review_approve(review=review, actor=reviewer, body="Looks good.")
        services.review_release(review=review, actor=actor, expected_current_version_id=None)
    prompt = Prompt.objects.get(project=project, name="support-reply")
    services.review_request_create(
        version=prompt.versions.get(number=3),
        label_name="production",
        description="Adds the open known issues to the system prompt, so answers mention incidents.",
        reviewer_ids=[reviewer.pk],
        actor=actor,
    )
