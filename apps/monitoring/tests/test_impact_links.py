"""The release impact page is reachable from the prompt's label history and from the review of the release."""

from __future__ import annotations

from django.urls import reverse

from apps.prompts import services as prompt_services
from apps.prompts.models import LabelMove, PromptVersion
from apps.reviews import services as review_services


def test_the_label_history_links_each_move_between_versions_to_its_impact(client_for, editor, released):
    v2 = PromptVersion.objects.get(prompt=released, number=2)
    prompt_services.label_move(prompt=released, label_name="production", version=v2, actor="test")
    move = LabelMove.objects.get(prompt=released, label_name="production", to_version=v2)
    first = LabelMove.objects.get(prompt=released, label_name="production", from_version__isnull=True)
    html = client_for(editor).get(reverse("prompts:detail", args=[released.project.slug, "greet"])).content.decode()
    history = html.split('id="label-history"')[1].split("</table>")[0]
    impact = reverse("monitoring:impact", args=[released.project.slug, move.pk])
    assert f'href="{impact}">Release impact</a>' in history
    assert reverse("monitoring:impact", args=[released.project.slug, first.pk]) not in history  # a label created
    assert client_for(editor).get(impact).status_code == 200


def test_the_review_of_a_released_version_links_its_release_impact(client_for, editor, member, released):
    v2 = PromptVersion.objects.get(prompt=released, number=2)
    review = review_services.review_request_create(version=v2, label_name="production", actor=editor)
    page = reverse("reviews:detail", args=[released.project.slug, review.pk])
    assert "release impact" not in client_for(editor).get(page).content.decode()  # not released yet
    prompt_services.label_move(prompt=released, label_name="production", version=v2, actor="test")
    move = LabelMove.objects.get(prompt=released, label_name="production", to_version=v2)
    html = client_for(editor).get(page).content.decode()
    assert reverse("monitoring:impact", args=[released.project.slug, move.pk]) in html
    assert "production: v1 → v2" in html and "Release impact in production" in html
