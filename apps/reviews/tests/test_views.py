import pytest
from django.core import mail

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.audit.models import AuditEvent
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews import evidence, services
from apps.reviews.models import ReviewEvent, ReviewRequest, ReviewStatus
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import approved, label_version_id, release

pytestmark = pytest.mark.django_db


def test_the_version_page_offers_request_release_to_editors_only(client_for, member, prompt, cast):
    page = client_for(cast.author).get("/p/acme/prompts/greet/v/2/").content.decode()
    assert 'href="/p/acme/reviews/request/greet/2/"' in page and "Request release" in page
    page = client_for(member("viewer", "vic")).get("/p/acme/prompts/greet/v/2/").content.decode()
    assert "Request release" not in page


def test_it_requests_a_release_with_chosen_reviewers_and_emails_them(
    client_for, prompt, policy, cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.author).post(
            "/p/acme/reviews/request/greet/3/",
            {"label": "production", "description": "Warmer greeting", "reviewers": [str(cast.reviewer.pk)]},
        )
    review = ReviewRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/p/acme/reviews/{review.pk}/"
    assert list(review.reviewers.all()) == [cast.reviewer]
    assert [m.to for m in mail.outbox] == [["rita@example.com"]]
    assert "Review requested: greet v3 → production" in mail.outbox[0].subject
    assert f"/p/acme/reviews/{review.pk}/" in mail.outbox[0].body
    event = AuditEvent.objects.get(action="review.requested")
    assert event.actor_repr == "alice" and event.after["reviewers"] == ["rita"]


def test_a_request_with_a_bad_label_keeps_what_was_typed(client_for, prompt, cast):
    response = client_for(cast.author).post(
        "/p/acme/reviews/request/greet/3/", {"label": "Prod Uction!", "description": "keep me"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "not a valid label name" in page and "keep me" in page
    assert not ReviewRequest.objects.exists()


def test_a_second_request_for_the_same_version_and_label_is_refused(client_for, prompt, policy, cast):
    client = client_for(cast.author)
    client.post("/p/acme/reviews/request/greet/3/", {"label": "production"})
    response = client.post("/p/acme/reviews/request/greet/3/", {"label": "production"})
    assert response.status_code == 400 and "already has an open request" in response.content.decode()
    assert ReviewRequest.objects.count() == 1


def test_the_review_page_shows_diff_preview_approvals_and_no_evidence(client_for, prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    review = services.review_request_create(
        version=version(prompt, 3), label_name="production", description="Warmer", actor=cast.author
    )
    page = client_for(cast.reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "production now (v1)" in page and "v3 (requested)" in page  # the diff's column titles
    assert '<del class="diff-del">Hello</del>' in page and '<ins class="diff-ins">Hey</ins>' in page
    assert "Hey Dana, welcome." in page  # rendered with the sample
    assert "Approvals 0 of 1" in page
    assert "No evidence is linked to v3 yet" in page
    assert "Approve v3" in page
    # The author sees why they cannot approve.
    page = client_for(cast.author).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "Approve v3" not in page and "someone else has to review it" in page


def test_a_registered_evidence_provider_fills_the_evidence_section(client_for, prompt, cast):
    def experiments(*, version, review):
        return [evidence.EvidenceItem(title=f"A/B test of v{version.number}", summary="win rate 61%", passed=True)]

    provider = evidence.EvidenceProvider(title="Experiments", collect=experiments)
    evidence.register(provider)
    try:
        review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
        page = client_for(cast.reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    finally:
        evidence.unregister(provider)
    assert "A/B test of v2" in page and "win rate 61%" in page and "No evidence is linked" not in page


def test_request_changes_without_a_comment_is_a_clear_error(client_for, prompt, policy, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    response = client_for(cast.reviewer).post(
        f"/p/acme/reviews/{review.pk}/decide/", {"decision": "request_changes", "body": ""}
    )
    assert response.status_code == 400 and "requesting changes needs a comment" in response.content.decode()
    assert not ReviewEvent.objects.filter(kind="changes_requested").exists()


def test_a_comment_reaches_the_conversation(client_for, prompt, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    client = client_for(cast.reviewer)
    client.post(f"/p/acme/reviews/{review.pk}/decide/", {"decision": "comment", "body": "Why the exclamation mark?"})
    page = client.get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "Why the exclamation mark?" in page
    assert AuditEvent.objects.filter(action="review.commented").exists()


def test_a_release_over_a_stale_page_is_refused_with_the_new_position(client_for, prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    review = approved(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    stale = label_version_id(prompt)
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    response = client_for(cast.author).post(
        f"/p/acme/reviews/{review.pk}/release/", {"expected_version": str(stale)}, follow=True
    )
    assert "production moved to v2 while you were looking" in response.content.decode()
    assert label_version_id(prompt) == version(prompt, 2).pk


def test_withdraw_and_update_are_the_requesters(client_for, prompt, policy, cast, member):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    other_editor = member("editor", "ed2")
    assert client_for(other_editor).post(f"/p/acme/reviews/{review.pk}/withdraw/").status_code == 403
    assert client_for(other_editor).post(f"/p/acme/reviews/{review.pk}/update/", {"version": "3"}).status_code == 403
    response = client_for(cast.author).post(f"/p/acme/reviews/{review.pk}/update/", {"version": "3"})
    new = ReviewRequest.objects.get(version=version(prompt, 3))
    assert response["Location"] == f"/p/acme/reviews/{new.pk}/"
    assert new.supersedes == review
    client_for(cast.author).post(f"/p/acme/reviews/{new.pk}/withdraw/")
    new.refresh_from_db()
    assert new.status == ReviewStatus.WITHDRAWN
    assert AuditEvent.objects.filter(action__in=["review.superseded", "review.withdrawn"]).count() == 2


def test_another_projects_review_is_a_404(client_for, prompt, cast):
    review = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    other = ProjectFactory(slug="other")
    outsider = MembershipFactory(project=other, role="admin").user
    client = client_for(outsider)
    assert client.get(f"/p/acme/reviews/{review.pk}/").status_code == 404
    # Their own project's address with this project's review id is a 404 too.
    assert client.get(f"/p/other/reviews/{review.pk}/").status_code == 404
    assert client.post(f"/p/other/reviews/{review.pk}/decide/", {"decision": "approve"}).status_code == 404
    assert client.post(f"/p/other/reviews/{review.pk}/release/", {"expected_version": ""}).status_code == 404


def test_the_request_form_404s_for_another_projects_prompt(client_for, cast):
    other_prompt = PromptFactory(project=ProjectFactory(slug="other"), name="theirs")
    make_version(other_prompt, "x")
    assert client_for(cast.author).get("/p/acme/reviews/request/theirs/1/").status_code == 404


def test_the_inbox_sorts_requests_for_me_mine_and_decided(client_for, prompt, policy, cast, member):
    waiting = services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    decided = release(version(prompt, 1), requester=cast.author, approver=cast.admin)
    page = client_for(cast.reviewer).get("/p/acme/reviews/").content.decode()
    waiting_section = page.split('id="waiting"')[1].split('id="mine"')[0]
    decided_section = page.split('id="decided"')[1]
    assert f"#{waiting.pk}" in waiting_section
    assert f"#{decided.pk}" in decided_section and "Released" in decided_section
    mine = client_for(cast.author).get("/p/acme/reviews/").content.decode().split('id="mine"')[1]
    assert f"#{waiting.pk}" in mine.split('id="decided"')[0]
    # An editor cannot approve under the default policy, so nothing waits for them.
    editor_page = client_for(member("editor", "ed3")).get("/p/acme/reviews/").content.decode()
    assert "Nothing waits for your review." in editor_page


def test_admins_edit_policies_and_each_change_is_audited(client_for, cast):
    client = client_for(cast.admin)
    data = {"label_name": "production", "protected": "on", "required_approvals": "2", "approver_roles": ["reviewer"]}
    assert client.post("/p/acme/reviews/policies/save/", data).status_code == 302
    data["required_approvals"] = "1"
    client.post("/p/acme/reviews/policies/save/", data)
    events = list(AuditEvent.objects.filter(action__startswith="policy.").order_by("id"))
    assert [e.action for e in events] == ["policy.created", "policy.changed"]
    assert events[1].before["required_approvals"] == 2 and events[1].after["required_approvals"] == 1


def test_a_bad_policy_is_refused_with_the_reason(client_for, cast):
    client = client_for(cast.admin)
    data = {"label_name": "latest", "protected": "on", "required_approvals": "1", "approver_roles": ["reviewer"]}
    response = client.post("/p/acme/reviews/policies/save/", data)
    assert response.status_code == 400 and "cannot have a release policy" in response.content.decode()
    data = {"label_name": "production", "protected": "on", "required_approvals": "0", "approver_roles": ["reviewer"]}
    assert client.post("/p/acme/reviews/policies/save/", data).status_code == 400


def test_the_audit_page_filters_review_events_and_exports_them(client_for, prompt, policy, cast):
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    client = client_for(cast.admin)
    page = client.get("/p/acme/audit/", {"action": "review.approved", "actor": "rita"}).content.decode()
    assert "review.approved" in page and "review.requested" not in page.split("<tbody>")[1]
    csv = b"".join(client.get("/p/acme/audit/export.csv", {"object": "greet v2"}).streaming_content).decode()
    for action in ("review.requested", "review.approved", "review.released"):
        assert action in csv
    assert "label.created" not in csv  # its object is greet@production, filtered out
