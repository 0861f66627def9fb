import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.accounts.permissions import Forbidden
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, Prompt
from apps.reviews import services
from apps.reviews.models import ReleasePolicy, ReviewRequest, ReviewStatus

pytestmark = pytest.mark.django_db


def test_the_demo_protects_production_and_its_flow_works(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    policy = ReleasePolicy.objects.get(project__slug="demo", label_name="production")
    assert policy.protected and policy.required_approvals == 1
    users = get_user_model().objects
    demo, reviewer = users.get(username="demo"), users.get(username="reviewer")
    prompt = Prompt.objects.get(project__slug="demo", name="support-reply")
    review = ReviewRequest.objects.get(prompt=prompt, status=ReviewStatus.OPEN)
    assert list(review.reviewers.all()) == [reviewer]

    with pytest.raises(Forbidden):
        services.review_approve(review=review, actor=demo)  # demo wrote v3
    services.review_approve(review=review, actor=reviewer)
    production = Label.objects.get(prompt=prompt, name="production")
    services.review_release(review=review, actor=demo, expected_current_version_id=production.version_id)
    production.refresh_from_db()
    assert production.version.number == 3
    # v2 was released through a review when the demo was seeded, so the rollback needs none.
    prompt_services.label_move(
        prompt=prompt, label_name="production", version=prompt.versions.get(number=2), actor=demo, rollback=True
    )
    production.refresh_from_db()
    assert production.version.number == 2
