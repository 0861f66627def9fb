"""The editor's check while typing (prompts:check) says what a save would say, with the line."""

import pytest

from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db

URL = "/p/acme/prompts/greeter/check/"


@pytest.fixture
def greeter(project):
    prompt = PromptFactory(project=project, name="greeter")
    make_version(prompt, "Hello {{ name }}")
    return prompt


def test_it_marks_the_line_a_save_refuses(client_for, editor, greeter):
    response = client_for(editor).post(URL, {"source": "Hello {{ name }}\r\nfine\r\n{{ name | shout }}"})
    assert response.status_code == 200
    problem = response.json()["problems"][0]
    assert problem == {"line": 3, "message": "unknown filter 'shout'"}
    saved = client_for(editor).post(
        "/p/acme/prompts/greeter/edit/",
        {"kind": "text", "template": "Hello {{ name }}\nfine\n{{ name | shout }}", "parent": "1",
         "msg-TOTAL_FORMS": "0", "msg-INITIAL_FORMS": "0", "response_format": "text"},
    )  # fmt: skip
    assert saved.status_code == 400 and b"Line 3" in saved.content  # the save says the same


def test_it_refuses_what_the_sandbox_refuses_and_lists_the_variables_of_a_good_template(client_for, editor, greeter):
    client = client_for(editor)
    include = client.post(URL, {"source": "a\n{% extends 'x' %}"}).json()["problems"][0]
    assert include["line"] == 2 and "extends" in include["message"]
    good = client.post(URL, {"source": "{{ greeting }} {% for x in items %}{{ x }}{% endfor %}"}).json()
    assert good == {"problems": [], "variables": ["greeting", "items"]}
    assert client.post(URL, {"source": "  "}).json() == {"problems": [], "variables": []}


def test_a_viewer_may_not_and_a_get_is_refused(client_for, member, greeter, editor):
    assert client_for(member("viewer", "vera")).post(URL, {"source": "x"}).status_code == 403
    assert client_for(editor).get(URL).status_code == 405


def test_the_editor_page_carries_the_allowed_filters_and_the_bundle(client_for, editor, greeter):
    page = client_for(editor).get("/p/acme/prompts/greeter/edit/").content.decode()
    assert 'id="editor-filters"' in page and '"upper"' in page and '"truncate"' in page
    assert "vendor/codemirror/codemirror.min.js" in page and 'data-check-url="/p/acme/prompts/greeter/check/"' in page
