import pytest
from django.core.management import call_command

from apps.prompts import includes
from apps.prompts.content import content_of, render_content
from apps.prompts.models import Prompt
from apps.reviews.models import ReviewRequest, ReviewStatus

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_snippet_with_a_dependent_and_a_release_in_review(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    voice = Prompt.objects.get(project__slug="demo", name="brand-voice")
    [dependent] = includes.dependents(snippet=voice)
    assert (dependent.prompt.name, dependent.labels, dependent.pinned.number) == ("welcome-email", ["production"], 1)
    review = ReviewRequest.objects.get(prompt=voice, status=ReviewStatus.OPEN)
    assert (review.version.number, review.label_name) == (2, "production")
    text = render_content(content_of(dependent.version), {"product": "Acme Cloud", "customer_name": "Dana"})
    assert text.endswith("Write in Acme Cloud's voice: warm, plain words, no jargon.")
