"""In a real browser, the live preview shows what is wrong with a template instead of keeping the last good render."""

import pytest

from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_preview_names_an_unknown_filter_and_a_hostile_template_is_stopped(page, login_page, member, project):
    editor = member("editor", "eddie")
    make_version(PromptFactory(project=project, name="greeter"), "Hello {{ name }}!", samples={"name": "Ann"})
    login_page(editor)
    page.goto("/p/acme/prompts/greeter/edit/")
    page.wait_for_load_state()  # htmx binds the live preview on load
    page.locator("#rendered", has_text="Hello Ann!").wait_for()

    page.fill("#id_template", "Hello\n{{ name | shout }}!")
    problem = page.locator("#problem", has_text="unknown filter 'shout'")
    problem.wait_for()
    assert "line 2" in problem.inner_text().lower()
    assert page.locator("#rendered").count() == 0  # not the last good render

    page.fill("#id_template", "{{ '{:1000000000}'.format(name) }}")
    page.locator("#preview-error", has_text="format widths").wait_for()

    page.fill("#id_template", "Hi {{ name }}, again")
    page.locator("#rendered", has_text="Hi Ann, again").wait_for()
