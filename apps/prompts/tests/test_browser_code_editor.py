"""The code editor (CodeMirror over the template textarea) in a real browser: the problem a save would refuse is
underlined on its own line while typing, autocomplete offers a declared variable and an allowed filter, chat
messages get the same editor, Ctrl-S saves; with JavaScript off the plain textarea still saves."""

import pytest

from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_editor(page, login_page, user, name):
    login_page(user)
    page.goto(f"/p/acme/prompts/{name}/edit/")
    page.wait_for_load_state()
    editor = page.locator("#text-section .cm-content")
    editor.wait_for()
    return editor


def test_the_error_marker_sits_on_the_line_that_fails_while_typing(page, login_page, member, project):
    make_version(PromptFactory(project=project, name="greeter"), "Hello {{ customer }}!", samples={"customer": "Ann"})
    console = []
    page.on("console", lambda message: console.append(message.text))
    editor = _open_editor(page, login_page, member("editor", "eddie"), "greeter")
    # CodeMirror's styles arrive as a constructed style sheet, which the Content-Security-Policy allows.
    assert page.locator("#text-section .cm-gutters").evaluate("e => getComputedStyle(e).display") == "flex"
    assert page.locator("#text-section .cm-editor").count() == 1
    assert page.locator("#id_template").get_attribute("aria-hidden") == "true"  # read once, by the editor

    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nsecond line\nthird {{ customer | shout }} line\nfourth line")
    marked = page.locator("#text-section .cm-lintRange-error")
    marked.wait_for()
    assert marked.inner_text() == "third {{ customer | shout }} line"
    page.locator("#text-section .cm-gutter-lint .cm-lint-marker-error").wait_for()
    marked.hover()
    page.locator(".cm-tooltip-lint", has_text="unknown filter 'shout'").wait_for()

    assert page.locator("#id_template").input_value() == (
        "Hello {{ customer }}!\nsecond line\nthird {{ customer | shout }} line\nfourth line"
    )  # the textarea the form posts follows the editor

    # Text put into the textarea (as a script or an older test would) reaches the editor; fixed, the marker goes.
    page.fill("#id_template", "Hello {{ customer }}!\nsecond line\nthird {{ customer | upper }} line")
    page.locator("#text-section .cm-line", has_text="customer | upper").wait_for()
    page.locator("#rendered", has_text="third ANN line").wait_for()
    page.locator("#text-section .cm-lintRange-error").wait_for(state="detached")
    assert not [text for text in console if "Content Security Policy" in text]


def test_autocomplete_offers_a_declared_variable_and_an_allowed_filter(page, login_page, member, project):
    make_version(PromptFactory(project=project, name="greeter"), "Hello {{ customer }}!", samples={"customer": "Ann"})
    editor = _open_editor(page, login_page, member("editor", "eddie"), "greeter")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nDear {{ cus")
    # Picked with the mouse: Enter within CodeMirror's interaction delay of the list opening would be a newline.
    page.locator(".cm-tooltip-autocomplete li", has_text="customer").click()
    page.keyboard.type(" | upp")
    page.locator(".cm-tooltip-autocomplete li", has_text="upper").click()
    page.keyboard.type(" }}")
    page.locator("#text-section .cm-line", has_text="Dear {{ customer | upper }}").wait_for()
    page.locator("#rendered", has_text="Dear ANN").wait_for()
    assert page.input_value("#id_template").endswith("Dear {{ customer | upper }}")

    page.keyboard.press("Control+s")  # the shortcut saves the version
    page.get_by_text("Saved v2 of greeter").wait_for()
    assert Prompt.objects.get(name="greeter").versions.get(number=2).template.endswith("Dear {{ customer | upper }}")


def test_chat_messages_get_the_same_editor_and_marker(page, login_page, member, project):
    prompt = PromptFactory(project=project, name="chatty")
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]
    make_version(prompt, kind="chat", messages=chat)
    login_page(member("editor", "eddie"))
    page.goto("/p/acme/prompts/chatty/edit/")
    page.wait_for_load_state()
    editors = page.locator("#messages-list .cm-content")
    editors.nth(1).wait_for()
    assert editors.count() == 2
    editors.nth(1).click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n{% if q %}")
    page.locator("#messages-list .cm-lintRange-error").wait_for()
    page.get_by_role("button", name="Add message").click()
    assert page.locator("#messages-list .cm-content").count() == 3


def test_a_new_prompt_switched_to_chat_gets_an_editor_per_message(page, login_page, member, project):
    PromptFactory(project=project, name="fresh")
    login_page(member("editor", "eddie"))
    page.goto("/p/acme/prompts/fresh/edit/")
    page.wait_for_load_state()
    page.locator("#text-section .cm-content").wait_for()
    page.get_by_label("Chat messages").check()
    editors = page.locator("#messages-list .cm-content")
    editors.nth(1).wait_for()  # made while their section was hidden, they draw once shown
    editors.nth(0).click()
    page.keyboard.type("Be brief.")
    editors.nth(1).click()
    page.keyboard.type("Answer {{ question }}")
    page.locator("#messages-list .cm-line", has_text="Answer {{ question }}").wait_for()
    assert page.input_value("#id_msg-0-content") == "Be brief."
    assert page.input_value("#id_msg-1-content") == "Answer {{ question }}"
    page.locator("#var-question").wait_for()  # the variables table follows the messages


def test_with_javascript_off_the_plain_textarea_still_saves(browser_instance, live_server, member, project):
    make_version(PromptFactory(project=project, name="greeter"), "Hello {{ customer }}!", samples={"customer": "Ann"})
    member("editor", "eddie")
    context = browser_instance.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/login/")
        page.fill("#id_username", "eddie")
        page.fill("#id_password", "password")
        page.click("button[type=submit]")
        page.goto("/p/acme/prompts/greeter/edit/")
        assert page.locator(".cm-editor").count() == 0
        page.fill("#id_template", "Good morning {{ customer }}!")
        page.get_by_role("button", name="Save version").click()
        page.get_by_text("Saved v2 of greeter").wait_for()
    finally:
        context.close()
    assert Prompt.objects.get(name="greeter").versions.get(number=2).template == "Good morning {{ customer }}!"
