"""The review flow in a real browser: request, changes requested, update, approve, release, roll back."""

import pytest

from apps.audit.models import AuditEvent
from apps.prompts.models import Label
from apps.reviews.models import ReviewRequest, ReviewStatus
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import release

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _production(prompt) -> int:
    return Label.objects.get(prompt=prompt, name="production").version.number


def test_it_runs_the_review_and_release_flow_in_a_browser(page, login_page, prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.admin)  # production starts at v1

    def switch_to(user):
        page.context.clear_cookies()
        login_page(user)

    # The editor asks for v2 to go to production, naming the reviewer.
    switch_to(cast.author)
    page.goto("/p/acme/prompts/greet/v/2/")
    page.get_by_role("link", name="Request release").click()
    page.fill("#id_label", "production")
    page.fill("#id_description", "A shorter greeting.")
    page.get_by_label("rita").check()
    page.get_by_role("button", name="Request release").click()
    page.get_by_text("Review requested: v2 → production").wait_for()
    assert "production now (v1)" in page.locator("#diff").inner_text()
    assert "Hi Dana!" in page.locator("#rendered").inner_text()
    assert "No evidence is linked" in page.locator("#evidence").inner_text()

    # The reviewer finds it in the inbox and requests changes.
    switch_to(cast.reviewer)
    page.goto("/p/acme/reviews/")
    page.locator("#waiting").get_by_role("link", name="greet v2").click()
    page.fill("#id_body", "Too terse; greet them properly.")
    page.get_by_role("button", name="Request changes").click()
    page.locator("#review-status", has_text="Changes requested").wait_for()

    # The editor updates the request to v3: a new request, approvals reset.
    switch_to(cast.author)
    page.goto("/p/acme/reviews/")
    page.locator("#mine").get_by_role("link", name="greet v2").click()
    assert "Too terse" in page.locator("#conversation").inner_text()
    page.select_option("#update-form select", "3")
    page.get_by_role("button", name="Update request").click()
    page.get_by_text("Updated to v3").wait_for()
    assert "Approvals 0 of 1" in page.locator("#approvals").inner_text()
    assert page.get_by_role("button", name="Approve v3").count() == 0  # the author cannot approve

    # The reviewer approves v3 and releases it.
    switch_to(cast.reviewer)
    page.goto("/p/acme/reviews/")
    page.locator("#waiting").get_by_role("link", name="greet v3").click()
    page.get_by_role("button", name="Approve v3").click()
    page.locator("#review-status", has_text="Approved").wait_for()
    page.get_by_role("button", name="Release v3 to production").click()
    page.get_by_text("Released: production now points at v3").wait_for()
    assert _production(prompt) == 3

    # The prompt page shows the move; an incident: roll back to the released v1 from the history.
    switch_to(cast.author)
    page.goto("/p/acme/prompts/greet/")
    assert "v3" in page.locator("#label-production").inner_text()
    page.get_by_role("button", name="Roll back to v1").click()
    page.get_by_text("production rolled back to v1").wait_for()
    assert _production(prompt) == 1

    # Moving production by hand to v2 (never approved) is refused with the reason.
    page.fill("#label-name", "production")
    page.select_option("#label-version", "2")
    page.get_by_role("button", name="Move label").click()
    page.get_by_text("production is protected: a review is required").wait_for()
    assert _production(prompt) == 1

    statuses = dict(ReviewRequest.objects.values_list("version__number", "status"))
    assert statuses == {1: ReviewStatus.RELEASED, 2: ReviewStatus.SUPERSEDED, 3: ReviewStatus.RELEASED}
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    for action in ("review.changes_requested", "review.superseded", "review.approved", "review.released"):
        assert action in actions
    assert actions[-2:] == ["release.rolled_back", "label.rolled_back"]
