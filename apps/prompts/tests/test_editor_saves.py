"""The editor's save: line endings, a refused save said plainly, and a three-way merge on a conflict."""

import pytest

from apps.prompts import merge
from apps.prompts.content import build_content
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.prompts.tests.test_views import _editor_post

pytestmark = pytest.mark.django_db

BASE = "Greeting line {{ name }}\nmiddle line\nclosing line\n"


def test_the_editor_stores_newlines_not_crlf(client_for, editor, project):
    prompt = PromptFactory(project=project, name="crlf")
    data = _editor_post("Hello {{ name }}\r\nBye\r\n", **{"var_names": "name", "var-name-sample": "A\r\nB"})
    assert client_for(editor).post("/p/acme/prompts/crlf/edit/", data).status_code == 302
    version = prompt.versions.get()
    assert version.template == "Hello {{ name }}\nBye"  # the form strips the last newline
    assert version.variables[0]["sample"] == "A\nB"


def test_chat_messages_lose_their_crlf_too(client_for, editor, project):
    prompt = PromptFactory(project=project, name="chatcrlf")
    data = _editor_post("", kind="chat", **{
        "msg-TOTAL_FORMS": "1", "msg-INITIAL_FORMS": "0", "msg-0-role": "user", "msg-0-content": "a\r\nb {{ q }}",
        "msg-0-ORDER": "1",
    })  # fmt: skip
    assert client_for(editor).post("/p/acme/prompts/chatcrlf/edit/", data).status_code == 302
    assert prompt.versions.get().messages == [{"role": "user", "content": "a\nb {{ q }}"}]


def test_a_refused_save_says_not_saved_and_why(client_for, editor, project):
    PromptFactory(project=project, name="refused")
    response = client_for(editor).post("/p/acme/prompts/refused/edit/", _editor_post("ok\n{% if x %}\n{{ y }"))
    assert response.status_code == 400
    html = response.content.decode()
    banner = html[html.index('id="not-saved"') : html.index("</div>", html.index('id="not-saved"'))]
    assert "Not saved." in banner and "Line 3" in banner


def test_the_preview_of_a_broken_draft_is_no_refused_save(client_for, editor, project):
    PromptFactory(project=project, name="typing")
    data = _editor_post("{{ y }", intent="preview")
    response = client_for(editor).post("/p/acme/prompts/typing/edit/", data, HTTP_HX_REQUEST="true")
    assert 'id="not-saved"' not in response.content.decode()


def test_merge_text_combines_edits_to_different_lines_and_names_an_overlap():
    saved = BASE.replace("Greeting", "Warm greeting")
    draft = BASE.replace("closing", "polite closing")
    assert merge.merge_text(BASE, saved, draft) == (
        "Warm greeting line {{ name }}\nmiddle line\npolite closing line\n", [],
    )  # fmt: skip
    text, overlaps = merge.merge_text(BASE, BASE.replace("middle", "saved middle"), BASE.replace("middle", "my middle"))
    assert text is None and [(o.base, o.saved, o.draft) for o in overlaps] == [
        ("middle line\n", "saved middle line\n", "my middle line\n")
    ]
    same = BASE.replace("middle", "same")
    assert merge.merge_text(BASE, same, same) == (same, [])


def test_content_merge_takes_a_config_change_from_one_side_and_a_template_change_from_the_other():
    base = build_content(kind="text", template=BASE, config={"temperature": 0.2})
    saved = build_content(kind="text", template=BASE, config={"temperature": 0.7})
    draft = build_content(kind="text", template=BASE.replace("closing", "final"), config={"temperature": 0.2})
    result = merge.content_merge(base=base, saved=saved, draft=draft)
    assert result.clean and result.content.config["temperature"] == 0.7 and "final line" in result.content.template
    clash = build_content(kind="text", template=BASE, config={"temperature": 0.9})
    assert [o.where for o in merge.content_merge(base=base, saved=saved, draft=clash).overlaps] == [
        "config key temperature"
    ]


def _race(project, member, saved_template):
    prompt = PromptFactory(project=project, name="shared")
    make_version(prompt, BASE)
    make_version(prompt, saved_template, actor=member("editor", "other"))
    return prompt


def test_a_conflict_without_overlap_offers_the_merge_and_saves_it_on_top(client_for, editor, member, project):
    prompt = _race(project, member, BASE.replace("Greeting", "Warm greeting"))
    client = client_for(editor)
    draft = _editor_post(BASE.replace("closing", "polite closing"), parent="1", message="politer")
    response = client.post("/p/acme/prompts/shared/edit/", draft)
    assert response.status_code == 409
    html = response.content.decode()
    assert "new version on top of v2</h1>" in html  # the heading names where a save now goes
    assert 'id="save-merged"' in html and "do not overlap" in html
    assert 'name="merge_base" value="1"' in html and 'name="parent" value="2"' in html
    saved = client.post("/p/acme/prompts/shared/edit/", {**draft, "parent": "2", "merge_base": "1", "intent": "merge"})
    assert saved.status_code == 302
    v3 = prompt.versions.get(number=3)
    assert v3.parent.number == 2 and v3.message == "politer"
    assert v3.template == "Warm greeting line {{ name }}\nmiddle line\npolite closing line"


def test_a_conflict_with_overlap_shows_both_sides_and_offers_no_merge(client_for, editor, member, project):
    prompt = _race(project, member, BASE.replace("middle", "their middle"))
    client = client_for(editor)
    draft = _editor_post(BASE.replace("middle", "my middle"), parent="1")
    html = client.post("/p/acme/prompts/shared/edit/", draft).content.decode()
    assert 'id="overlaps"' in html and 'id="save-merged"' not in html
    overlap = html[html.index('id="overlaps"') :]
    assert "Both change template" in overlap and "their middle" in overlap and "my middle" in overlap
    merge_post = {**draft, "parent": "2", "merge_base": "1", "intent": "merge"}
    refused = client.post("/p/acme/prompts/shared/edit/", merge_post)
    assert refused.status_code == 400 and "cannot merge: both edits change template" in refused.content.decode()
    assert prompt.versions.count() == 2
