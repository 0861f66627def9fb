"""GET /api/v1/prompts/{name}/diff: two versions, by number or label, as a unified diff."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_diffs_a_label_against_a_version(api, make_key, released):
    response = api(make_key()).get("/api/v1/prompts/greet/diff?old=production&new=2")
    assert response.status_code == 200
    body = response.json()
    assert body["old"] == {"version": 1, "labels": ["production"]}
    assert body["new"] == {"version": 2, "labels": ["staging"]}
    assert body["unchanged"] is False and body["type_changed"] is False
    assert "-Hello {{ name }}\n+Hi {{ name }}, you are {{ age }}" in body["diff"]
    assert {c["name"] for c in body["config"]} == {"temperature"}
    assert [v["name"] for v in body["variables"]] == ["age"]


def test_a_version_against_itself_is_unchanged(api, make_key, released):
    body = api(make_key()).get("/api/v1/prompts/greet/diff?old=1&new=production").json()
    assert body["unchanged"] is True and body["diff"] == ""


@pytest.mark.parametrize(
    "query,status,code",
    [
        ("old=1", 400, "invalid_query"),
        ("old=1&new=9", 404, "version_not_found"),
        ("old=1&new=canary", 404, "label_not_found"),
        ("old=1&new=Bad%20Label", 400, "invalid_label"),
    ],
)
def test_bad_references_are_named(api, make_key, released, query, status, code):
    response = api(make_key()).get(f"/api/v1/prompts/greet/diff?{query}")
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_another_projects_prompt_is_not_found(api, make_key, released):
    from apps.accounts.tests.factories import ProjectFactory

    response = api(make_key(of_project=ProjectFactory())).get("/api/v1/prompts/greet/diff?old=1&new=2")
    assert response.status_code == 404 and response.json()["code"] == "prompt_not_found"
