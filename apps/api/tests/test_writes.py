from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.prompts import services
from apps.prompts.models import Prompt
from apps.prompts.services import LabelMoveRefused

pytestmark = pytest.mark.django_db

TEXT = {"type": "text", "template": "Bye {{ name }}", "variables": [{"name": "name", "type": "string"}]}


def test_it_saves_a_version_on_the_newest_parent(api, make_key, released):
    response = api(make_key("write", name="ci")).post(
        "/api/v1/prompts/greet/versions", {**TEXT, "parent_version": 2, "message": "from CI"}
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["template"], body["created"]) == (3, "Bye {{ name }}", True)
    version = released.versions.get(number=3)
    assert version.author_repr.startswith("api key ps_") and version.author_repr.endswith("(ci)")
    event = AuditEvent.objects.get(action="prompt.version_saved", object_id=str(version.pk))
    assert event.actor_repr == version.author_repr


def test_it_refuses_a_stale_parent_and_saves_nothing(api, make_key, released):
    response = api(make_key("write")).post("/api/v1/prompts/greet/versions", {**TEXT, "parent_version": 1})
    assert response.status_code == 409
    assert response.json()["code"] == "stale_parent"
    assert response.json()["newest_version"] == 2
    assert released.versions.count() == 2


def test_it_saves_nothing_when_the_content_is_unchanged(api, make_key, released):
    client = api(make_key("write"))
    first = client.post("/api/v1/prompts/greet/versions", {**TEXT, "parent_version": 2})
    again = client.post("/api/v1/prompts/greet/versions", {**TEXT, "parent_version": 3})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert again.json()["version"] == 3
    assert released.versions.count() == 3


def test_it_creates_a_prompt_only_when_asked(api, make_key, project):
    client = api(make_key("write"))
    missing = client.post("/api/v1/prompts/new-one/versions", {**TEXT, "parent_version": None})
    assert missing.status_code == 404
    created = client.post("/api/v1/prompts/new-one/versions", {**TEXT, "parent_version": None, "create_prompt": True})
    assert created.status_code == 201
    assert Prompt.objects.get(project=project, name="new-one").versions.count() == 1


def test_it_names_the_problem_in_bad_content_and_creates_nothing(api, make_key, project):
    client = api(make_key("write"))
    response = client.post(
        "/api/v1/prompts/broken/versions",
        {"type": "text", "template": "Hi {{ name ", "parent_version": None, "create_prompt": True},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_content"
    assert response.json()["line"] == 1
    assert not Prompt.objects.filter(name="broken").exists()
    chat = client.post("/api/v1/prompts/x/versions", {"type": "chat", "messages": [], "parent_version": None})
    assert chat.status_code in (400, 404)


def test_it_moves_a_label_with_the_key_as_actor(api, make_key, released):
    response = api(make_key("write", name="deployer")).post(
        "/api/v1/prompts/greet/labels/production", {"version": 2, "reason": "ship it"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "name": "greet",
        "label": "production",
        "version": 2,
        "previous_version": 1,
        "moved": True,
    }
    assert released.labels.get(name="production").version.number == 2
    event = AuditEvent.objects.filter(action="label.moved").get()
    assert event.actor_repr.startswith("api key ps_") and "(deployer)" in event.actor_repr
    assert event.after == {"version": 2, "reason": "ship it"}
    assert released.label_moves.first().actor_repr == event.actor_repr


def test_it_answers_moved_false_when_the_label_is_already_there(api, make_key, released):
    response = api(make_key("write")).post("/api/v1/prompts/greet/labels/production", {"version": 1})
    assert response.status_code == 200
    assert response.json()["moved"] is False


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("/api/v1/prompts/greet/labels/production", {"version": 9}, 404, "version_not_found"),
        ("/api/v1/prompts/nope/labels/production", {"version": 1}, 404, "prompt_not_found"),
        ("/api/v1/prompts/greet/labels/latest", {"version": 1}, 400, "invalid_label"),
        ("/api/v1/prompts/greet/labels/Prod!", {"version": 1}, 400, "invalid_label"),
        ("/api/v1/prompts/greet/labels/production", {}, 400, "invalid_request"),
    ],
)
def test_it_refuses_bad_label_moves(api, make_key, released, path, payload, status, code):
    response = api(make_key("write")).post(path, payload)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert released.labels.get(name="production").version.number == 1


@pytest.fixture
def protected_production():
    """A guard like the review app's: production moves only with an approved review."""

    def guard(attempt):
        if attempt.label_name == "production":
            raise LabelMoveRefused("production is protected: a review with 1 approval is required before it moves.")

    services.register_label_move_guard(guard)
    yield
    services._label_move_guards.remove(guard)


def test_it_refuses_a_protected_label_with_403_even_for_a_write_key(api, make_key, released, protected_production):
    response = api(make_key("write")).post("/api/v1/prompts/greet/labels/production", {"version": 2})
    assert response.status_code == 403
    assert response.json()["code"] == "review_required"
    assert "review" in response.json()["detail"]
    assert released.labels.get(name="production").version.number == 1
    assert not AuditEvent.objects.filter(action="label.moved").exists()
    staging = api(make_key("write")).post("/api/v1/prompts/greet/labels/staging", {"version": 1})
    assert staging.status_code == 200


def test_it_refuses_a_label_protected_by_a_release_policy(api, make_key, released, project, member):
    """The real gate of the reviews app: a write key cannot skip a review."""
    from apps.reviews.services import policy_save

    policy_save(
        project=project,
        label_name="production",
        protected=True,
        required_approvals=1,
        approver_roles=["reviewer"],
        actor=member("admin"),
    )
    response = api(make_key("write")).post("/api/v1/prompts/greet/labels/production", {"version": 2})
    assert response.status_code == 403
    assert response.json()["code"] == "review_required"
    assert "a review is required" in response.json()["detail"]
    assert released.labels.get(name="production").version.number == 1


def test_a_nul_character_is_a_clear_400_not_a_500(api, make_key, released):
    body = {**TEXT, "parent_version": 2, "config": {"extra": {"user": "a\u0000b"}}}
    response = api(make_key("write")).post("/api/v1/prompts/greet/versions", body)
    assert response.status_code == 400 and response.json()["code"] == "invalid_content"
    assert "NUL" in response.json()["detail"]
    assert released.versions.count() == 2
