"""The main flow of the registry in a real browser: log in, write, version, diff, release, roll back."""

import pytest

from apps.prompts.models import Label, Prompt

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_runs_the_registry_flow_in_a_browser(page, login_page, member, project):
    editor = member("editor", "eddie")
    login_page(editor)
    page.goto("/p/acme/prompts/")
    page.get_by_text("No prompts yet").wait_for()

    page.get_by_role("link", name="New prompt").click()
    page.fill("#id_name", "greeter")
    page.fill("#id_tags", "demo")
    page.get_by_role("button", name="Create and write v1").click()
    page.wait_for_load_state()  # htmx binds the live preview on load; typing before that is not seen

    # v1: type a template; the live preview names the variable until it has a sample.
    page.fill("#id_template", "Hello {{ name }}!")
    page.locator("#preview-error").wait_for()
    assert "name" in page.locator("#preview-error").inner_text()
    page.locator("input[name='var-name-sample']").fill("Ann")
    page.locator("#rendered", has_text="Hello Ann!").wait_for()
    page.fill("#id_message", "first draft")
    page.get_by_role("button", name="Save version").click()
    page.get_by_text("Saved v1 of greeter").wait_for()

    # v2 from the version page.
    page.get_by_role("link", name="Edit from this version").click()
    page.wait_for_load_state()
    page.fill("#id_template", "Good morning {{ name }}!")
    page.locator("#rendered", has_text="Good morning Ann!").wait_for()
    page.fill("#id_message", "warmer")
    page.get_by_role("button", name="Save version").click()
    page.get_by_text("Saved v2 of greeter").wait_for()

    # The diff, word by word.
    page.get_by_role("link", name="Diff with v1").click()
    assert page.locator("del.diff-del").first.inner_text() == "Hello"
    assert "Good" in page.locator("ins.diff-ins").first.inner_text()

    # Release v1 then v2 to production, then roll back from the history.
    page.goto("/p/acme/prompts/greeter/")
    page.fill("#label-name", "production")
    page.select_option("#label-version", "1")
    page.get_by_role("button", name="Move label").click()
    page.get_by_text("production now points at v1").wait_for()
    page.fill("#label-name", "production")
    page.select_option("#label-version", "2")
    page.fill("#label-reason", "ship the warmer greeting")
    page.get_by_role("button", name="Move label").click()
    page.get_by_text("production now points at v2").wait_for()
    page.get_by_role("button", name="Roll back to v1").first.click()
    page.get_by_text("production rolled back to v1").wait_for()

    prompt = Prompt.objects.get(project=project, name="greeter")
    assert prompt.versions.count() == 2
    assert Label.objects.get(prompt=prompt, name="production").version.number == 1
    assert page.locator("#label-history tr", has_text="rolled back").count() == 1


def test_the_editor_adds_and_reorders_chat_messages(page, login_page, member, project):
    editor = member("editor", "eddie")
    Prompt.objects.create(project=project, name="chatty")
    login_page(editor)
    page.goto("/p/acme/prompts/chatty/edit/?kind=chat")
    rows = page.locator("[data-message-row]")
    rows.nth(0).locator("textarea").fill("You are terse.")
    rows.nth(1).locator("textarea").fill("Question: {{ q }}")
    page.get_by_role("button", name="Add message").click()
    rows.nth(2).locator("select").select_option("assistant")
    rows.nth(2).locator("textarea").fill("Sure.")
    # Move the assistant message above the user message.
    rows.nth(2).get_by_role("button", name="Move message up").click()
    page.locator("input[name='var-q-sample']").fill("why?")
    page.locator("#rendered", has_text="why?").wait_for()
    page.get_by_role("button", name="Save version").click()
    page.get_by_text("Saved v1 of chatty").wait_for()
    version = Prompt.objects.get(name="chatty").versions.get()
    assert [m["role"] for m in version.messages] == ["system", "assistant", "user"]
