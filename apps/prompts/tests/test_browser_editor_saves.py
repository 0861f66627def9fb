"""The editor in a real browser: a refused save says "Not saved"; a conflict whose edits do not overlap is
merged with one click; the playground shows a chat prompt's messages in its form, not as alerts."""

import pytest

from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BASE = "First line {{ name }}\nmiddle line\nlast line"


def test_a_refused_save_says_not_saved_and_a_conflict_merges(page, login_page, member, project):
    editor, other = member("editor", "eddie"), member("editor", "olga")
    prompt = PromptFactory(project=project, name="shared")
    make_version(prompt, BASE, samples={"name": "Ann"})
    login_page(editor)
    page.goto("/p/acme/prompts/shared/edit/")
    page.wait_for_load_state()
    assert page.locator("#editor-heading").inner_text().endswith("new version on top of v1")

    page.fill("#id_template", "broken {{ name }")
    page.get_by_role("button", name="Save version").click()
    banner = page.locator("#not-saved")
    banner.wait_for()
    assert banner.inner_text().startswith("Not saved.") and "Line 1" in banner.inner_text()

    # Meanwhile someone else saves v2, changing the first line; this draft changes the last one.
    make_version(prompt, BASE.replace("First", "Opening"), actor=other, samples={"name": "Ann"})
    page.fill("#id_template", BASE.replace("last", "closing"))
    page.fill("#id_message", "better ending")
    page.get_by_role("button", name="Save version").click()
    page.locator("#conflict").wait_for()
    assert page.locator("#editor-heading").inner_text().endswith("new version on top of v2")
    assert "do not overlap" in page.locator("#merge").inner_text()
    page.locator("#save-merged").click()
    page.get_by_text("Saved v3 of shared").wait_for()
    v3 = Prompt.objects.get(name="shared").versions.get(number=3)
    assert v3.template == "Opening line {{ name }}\nmiddle line\nclosing line" and v3.parent.number == 2


def test_the_playground_keeps_a_chat_prompts_messages_out_of_the_alerts(page, login_page, member, project):
    editor = member("editor", "eddie")
    prompt = PromptFactory(project=project, name="chatty")
    make_version(prompt, kind="chat", messages=[{"role": "system", "content": "Be brief about {{ topic }}."}],
                 samples={"topic": "tea"})  # fmt: skip
    login_page(editor)
    page.goto("/p/acme/playground/?prompt=chatty")
    page.locator("#msg-0").wait_for()
    assert page.locator("#msg-0").input_value() == "Be brief about {{ topic }}."
    assert page.locator("#messages .alert").count() == 0
