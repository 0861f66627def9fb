"""Composition in a real browser: a snippet's page lists its dependents, its release's review lists them too."""

import pytest

from apps.prompts.models import PromptVersion
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews.tests.factories import release

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_snippet_lists_its_dependents_and_its_release_review_lists_them_too(page, login_page, project, cast, policy):
    tone = PromptFactory(project=project, name="tone")
    release(make_version(tone, "Be {{ mood }}.", actor=cast.author), requester=cast.author, approver=cast.reviewer)
    main = PromptFactory(project=project, name="main")
    make_version(main, "Hello {{ name }}.", actor=cast.author, samples={"name": "Ann"})
    login_page(cast.author)

    # The author includes the snippet in main: a wrong label is refused with its line, the right one is pinned.
    page.goto("/p/acme/prompts/main/edit/")
    page.wait_for_load_state()
    page.fill("#id_template", 'Hello {{ name }}.\n{% include "tone@canary" %}')
    page.get_by_role("button", name="Save version").click()
    assert "Line 2:" in page.locator("#not-saved").inner_text()
    assert "tone has no label 'canary'" in page.locator("#not-saved").inner_text()
    page.fill("#id_template", 'Hello {{ name }}.\n{% include "tone@production" %}')
    page.locator("input[name='var-mood-sample']").fill("kind")
    page.locator("#rendered", has_text="Be kind.").wait_for()
    page.get_by_role("button", name="Save version").click()
    page.get_by_text("Saved v2 of main").wait_for()
    assert "tone v1" in page.locator("#includes").inner_text()
    release(main.versions.get(number=2), requester=cast.author, approver=cast.reviewer)

    # The snippet's page lists the prompt and the label that include it, and fits a narrow window.
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto("/p/acme/prompts/tone/")
    row = page.locator("#dependents-production tr.dependent[data-prompt='main']")
    assert "production" in row.inner_text() and "tone v1" in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 800

    # A new version of the snippet goes up for review on protected production: the review lists main.
    make_version(tone, "Be very {{ mood }}.", actor=cast.author)
    page.goto("/p/acme/prompts/tone/v/2/")
    page.get_by_role("link", name="Request release").click()
    page.fill("#id_label", "production")
    page.get_by_label("rita").check()
    page.get_by_role("button", name="Request release").click()
    page.get_by_text("Review requested: v2 → production").wait_for()
    dependent = page.locator("#dependents tr.dependent[data-prompt='main']")
    assert "tone v1" in dependent.inner_text() and "tone v2" in dependent.inner_text()
    assert "production" in dependent.inner_text()

    # The reviewer approves, the author releases, then re-pins main from the review into a version for review.
    page.context.clear_cookies()
    login_page(cast.reviewer)
    page.goto("/p/acme/reviews/")
    page.locator("#waiting").get_by_role("link", name="tone v2").click()
    page.get_by_role("button", name="Approve").click()
    page.locator("#review-status", has_text="Approved").wait_for()
    review_url = page.url
    page.context.clear_cookies()
    login_page(cast.author)
    page.goto(review_url)
    page.get_by_role("button", name="Release v2 to production").click()
    page.get_by_text("Released: production now points at v2").wait_for()
    page.get_by_role("button", name="Re-pin the dependents to v2").click()
    page.get_by_text("Saved main v3 with tone@production re-pinned").wait_for()
    repinned = PromptVersion.objects.get(prompt=main, number=3)
    assert [(p.ref, p.snippet_version.number) for p in repinned.include_pins.all()] == [("tone@production", 2)]
    assert main.labels.get(name="production").version.number == 2  # released only through its own review
