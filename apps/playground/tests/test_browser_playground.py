"""The playground in Chromium: two versions side by side, a tool call answered by hand, structured output as a
tree. Results run on a real Celery worker against the simulated OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.playground.models import PlaygroundRun
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.worker]

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture
def greet(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}", samples={"name": "Ada"}, actor=editor)
    make_version(prompt, "Goodbye {{ name }}", samples={"name": "Ada"}, actor=editor)
    return prompt


def test_it_compares_two_versions_side_by_side(project, editor, greet, simulated_endpoint, celery_worker, login_page):
    simulated_endpoint("Echo")
    page = login_page(editor)
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=greet&version=2")
    page.check("#compare-1")  # submits the pick form: the page comes back comparing with v1
    page.wait_for_selector("#compare-note")
    assert "compare=1" in page.url
    page.fill("#var-name", "Grace")
    page.click("#run-button")
    page.locator(".result[data-status='done']").nth(1).wait_for(timeout=30_000)
    cards = page.locator(".result")
    shown = {cards.nth(i).locator(".column-label").inner_text(): cards.nth(i).locator(".output").inner_text()
             for i in range(2)}  # fmt: skip
    assert shown == {"v2": "Goodbye Grace", "v1": "Hello Grace"}
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_it_shows_a_tool_call_and_finishes_the_turn_with_the_answer_typed_by_hand(
    project, editor, simulated_endpoint, celery_worker, login_page
):
    prompt = PromptFactory(project=project, name="weather")
    ask = [{"role": "user", "content": "Weather in {{ city }}? [[tool:get_weather]]"}]
    make_version(prompt, kind="chat", messages=ask, samples={"city": "Oslo"}, actor=editor)
    simulated_endpoint("Echo")
    page = login_page(editor)
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=weather")
    page.click("#run-params summary")
    page.fill("#param-tools", json.dumps(WEATHER))
    page.click("#run-button")

    call = page.wait_for_selector(".result[data-status='done'] .tool-call[data-tool='get_weather']", timeout=30_000)
    assert json.loads(call.query_selector(".tool-arguments").inner_text()) == {"city": "Weather in Oslo?"}
    page.click(".continue-button")  # no answer yet: refused, nothing sent
    assert "Answer the call to get_weather" in page.inner_text(".continue-error")
    page.fill(".tool-answer[data-tool='get_weather']", '{"sky": "clear", "celsius": -3}')
    page.click(".continue-button")

    page.wait_for_selector("#continues")
    page.wait_for_selector(".result[data-status='done'] .output", timeout=30_000)
    assert page.inner_text(".result .output") == 'Tool get_weather said: {"sky": "clear", "celsius": -3}'
    roles = page.eval_on_selector_all(".conversation .turn", "turns => turns.map(t => t.dataset.role)")
    assert roles == ["user", "assistant", "tool"]
    assert PlaygroundRun.objects.count() == 2


def test_it_shows_structured_output_as_a_tree_that_folds(
    project, editor, greet, simulated_endpoint, celery_worker, login_page
):
    simulated_endpoint("Echo")
    schema = {
        "type": "object",
        "properties": {"greeting": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
                       "meta": {"type": "object", "properties": {"words": {"type": "integer"}}}},
        "required": ["greeting"],
    }  # fmt: skip
    page = login_page(editor)
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=greet&version=1")
    page.click("#run-params summary")
    page.fill("#param-schema", json.dumps(schema))
    page.click("#run-button")

    tree = page.wait_for_selector(".result[data-status='done'] .structured-tree", timeout=30_000)
    assert page.inner_text(".schema-verdict") == "matches the schema"
    assert tree.query_selector("[data-key='greeting'] .tree-value").inner_text() == '"Hello Ada"'
    assert tree.query_selector("[data-key='words'] .tree-value").inner_text() == "2"
    meta = tree.query_selector("li[data-key='meta'] > details")
    assert meta.get_attribute("open") is not None and meta.query_selector("[data-key='words']").is_visible()
    meta.query_selector("summary").click()
    assert meta.get_attribute("open") is None and not meta.query_selector("[data-key='words']").is_visible()


def test_it_saves_the_draft_as_a_version_and_shows_a_conflict_when_one_was_saved_since(
    project, editor, greet, simulated_endpoint, login_page
):
    simulated_endpoint("Echo")
    page = login_page(editor)
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=greet&version=2")
    page.fill("#template", "See you soon, {{ name }}")
    page.fill("#save-message", "warmer goodbye")
    page.click("#save-button")
    page.wait_for_url("**version=3")
    assert "Saved v3 of greet." in page.inner_text("#messages")
    assert page.input_value("#template") == "See you soon, {{ name }}"
    saved = greet.versions.get(number=3)
    assert (saved.message, saved.parent.number) == ("warmer goodbye", 2)

    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=greet&version=1")
    page.fill("#template", "Hi there {{ name }}")
    page.click("#save-button")
    error = page.wait_for_selector("#run-error")
    assert "You started from v1, but v3 was saved since" in error.inner_text()
    assert page.input_value("#template") == "Hi there {{ name }}"  # the draft is kept
    assert greet.versions.count() == 3
