"""Hostile templates through the REST API: refused at save (400 naming the problem) or rendered within the limits."""

from __future__ import annotations

import time

import pytest

from apps.prompts.tests.hostile import PAYLOADS

pytestmark = pytest.mark.django_db

GENEROUS_SECONDS = 3.0  # the limit is 200 ms; the test machine is shared (see bench/hostile_templates.py)
IDS = [name for name, _, _ in PAYLOADS]


def _type(value) -> str:
    if isinstance(value, list):
        return "list"
    return "number" if isinstance(value, int) else "string"


@pytest.mark.parametrize(("name", "source", "values"), PAYLOADS, ids=IDS)
def test_each_is_refused_at_save_or_at_render_or_rendered_within_the_limits(api, make_key, settings, name, source,
                                                                            values):  # fmt: skip
    writer, reader = api(make_key("write")), api(make_key("read", name="reader"))
    specs = [{"name": key, "type": _type(value)} for key, value in values.items()]
    saved = writer.post(
        "/api/v1/prompts/hostile/versions",
        {"type": "text", "template": source, "variables": specs, "parent_version": None, "create_prompt": True},
    )
    if saved.status_code == 400:
        assert saved.json()["code"] == "invalid_content" and saved.json()["detail"]
        return
    assert saved.status_code == 201, saved.content[:300]
    started = time.monotonic()
    rendered = reader.post("/api/v1/prompts/hostile/render", {"version": 1, "variables": values})
    assert time.monotonic() - started < GENEROUS_SECONDS
    assert rendered.status_code in (200, 400), rendered.content[:300]
    if rendered.status_code == 400:
        # invalid_json: the body itself is refused (numbers over 100 digits, nesting past 100 levels).
        assert rendered.json()["code"] in ("render_failed", "invalid_variable", "invalid_json")
        assert rendered.json()["detail"]
    else:
        assert len(rendered.json()["text"]) <= settings.TEMPLATE_RENDER_MAX_CHARS


def test_an_unknown_filter_is_refused_at_save_with_its_line_and_name(api, make_key):
    response = api(make_key("write")).post(
        "/api/v1/prompts/typo/versions",
        {"type": "text", "template": "Hi\n{{ x | nosuchfilter }}", "parent_version": None, "create_prompt": True},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_content"
    assert response.json()["line"] == 2
    assert "unknown filter 'nosuchfilter'" in response.json()["detail"]
