"""The review of a snippet's release on a protected label lists the prompts that include it and would change."""

from __future__ import annotations

import pytest

from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews import services
from apps.reviews.tests.factories import release

pytestmark = pytest.mark.django_db


@pytest.fixture
def snippet(project, cast, policy):
    """tone v1 released on protected production, included by main (released) and draft (unreleased)."""
    tone = PromptFactory(project=project, name="tone")
    release(make_version(tone, "Be {{ mood }}.", actor=cast.author, samples={"mood": "calm"}),
            requester=cast.author, approver=cast.reviewer)  # fmt: skip
    main = PromptFactory(project=project, name="main")
    release(make_version(main, 'Hi. {% include "tone@production" %}', actor=cast.author),
            requester=cast.author, approver=cast.reviewer)  # fmt: skip
    make_version(PromptFactory(project=project, name="draft"), '{% include "tone@production" %}', actor=cast.author)
    make_version(PromptFactory(project=project, name="elsewhere"), "no include", actor=cast.author)
    return tone


def test_the_review_of_a_snippet_release_lists_the_dependents_that_would_change(client_for, cast, snippet):
    v2 = make_version(snippet, "Be very {{ mood }}.", actor=cast.author)
    review = services.review_request_create(version=v2, label_name="production", actor=cast.author)
    page = client_for(cast.reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    section = page[page.index('id="dependents"') :]
    rows = {name: section[section.index(f'data-prompt="{name}"') :][:1200] for name in ("main", "draft")}
    assert "production" in rows["main"] and "tone v1" in rows["main"] and "tone v2" in rows["main"]
    assert "tone v2" in rows["draft"]
    assert 'data-prompt="elsewhere"' not in section
    preview = section[section.index('class="dependent-preview" data-prompt="main"') :][:3000]
    assert "Be" in preview and '<ins class="diff-ins">very </ins>' in preview  # main's text, re-pinned
    assert "Re-pin the dependents" not in section  # not released yet

    services.review_approve(review=review, actor=cast.reviewer)
    services.review_release(
        review=review, actor=cast.author, expected_current_version_id=snippet.versions.get(number=1).pk
    )
    client = client_for(cast.author)
    released = client.get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "Re-pin the dependents to v2" in released
    back = client.post("/p/acme/prompts/tone/dependents/repin/",
                       {"label": "production", "next": f"/p/acme/reviews/{review.pk}/"}, follow=True)  # fmt: skip
    assert back.redirect_chain[-1][0] == f"/p/acme/reviews/{review.pk}/"
    assert "Saved draft v2, main v2 with tone@production re-pinned" in back.content.decode()


def test_a_release_review_of_a_prompt_nobody_includes_has_no_dependents_section(client_for, cast, prompt):
    review = services.review_request_create(version=prompt.versions.get(number=2), label_name="production",
                                            actor=cast.author)  # fmt: skip
    assert 'id="dependents"' not in client_for(cast.reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
