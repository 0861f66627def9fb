import pytest

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.prompts.models import Label, Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def _editor_post(template, parent="", message="", **extra):
    data = {
        "kind": "text",
        "template": template,
        "parent": parent,
        "message": message,
        "msg-TOTAL_FORMS": "0",
        "msg-INITIAL_FORMS": "0",
        "response_format": "text",
    }
    data.update(extra)
    return data


def test_it_lists_and_searches_prompts(client_for, editor, project):
    PromptFactory(project=project, name="support-reply", description="answers tickets")
    PromptFactory(project=project, name="summarize")
    client = client_for(editor)
    page = client.get("/p/acme/prompts/", {"q": "ticket"})
    assert b"support-reply" in page.content and b"summarize" not in page.content


def test_it_shows_an_empty_state_to_a_new_project(client_for, editor):
    page = client_for(editor).get("/p/acme/prompts/")
    assert b"No prompts yet" in page.content


def test_a_stranger_gets_404_for_another_projects_prompt(client_for, project):
    PromptFactory(project=project, name="secret")
    outsider = MembershipFactory(project=ProjectFactory(slug="other")).user
    client = client_for(outsider)
    assert client.get("/p/acme/prompts/secret/").status_code == 404
    assert client.get("/p/acme/prompts/").status_code == 404
    # Their own project with the other project's prompt name is also a 404.
    assert client.get("/p/other/prompts/secret/").status_code == 404


def test_a_viewer_reads_but_cannot_write(client_for, member, project):
    prompt = PromptFactory(project=project, name="p")
    make_version(prompt, "Hi {{ x }}")
    client = client_for(member("viewer"))
    assert client.get("/p/acme/prompts/p/").status_code == 200
    assert client.get("/p/acme/prompts/p/edit/").status_code == 403
    assert client.post("/p/acme/prompts/new/", {"name": "x", "kind": "text"}).status_code == 403
    response = client.post("/p/acme/prompts/p/labels/move/", {"label": "production", "version": "1"})
    assert response.status_code == 403
    assert not Label.objects.exists()


def test_anonymous_users_are_sent_to_login(client, project):
    response = client.get("/p/acme/prompts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_creates_a_prompt_and_refuses_a_duplicate_name(client_for, editor, project):
    client = client_for(editor)
    response = client.post("/p/acme/prompts/new/", {"name": "greeter", "kind": "chat", "tags": "a, b"})
    assert response.status_code == 302 and response["Location"].endswith("/p/acme/prompts/greeter/edit/?kind=chat")
    again = client.post("/p/acme/prompts/new/", {"name": "greeter", "kind": "text"})
    assert again.status_code == 200 and b"already exists" in again.content
    assert Prompt.objects.filter(project=project).count() == 1


def test_it_saves_versions_from_the_editor(client_for, editor, project):
    prompt = PromptFactory(project=project, name="greeter")
    client = client_for(editor)
    post = _editor_post(
        "Hello {{ name }}",
        message="first",
        **{"var_names": "name", "var-name-type": "string", "var-name-sample": "Ann"},
    )
    response = client.post("/p/acme/prompts/greeter/edit/", post)
    assert response.status_code == 302
    version = prompt.versions.get()
    assert (version.number, version.message, version.author) == (1, "first", editor)
    assert version.variables == [{"name": "name", "type": "string", "description": "", "sample": "Ann"}]


def test_it_saves_chat_messages_in_the_chosen_order_without_deleted_ones(client_for, editor, project):
    prompt = PromptFactory(project=project, name="chat")
    post = _editor_post("", kind="chat")
    post.update(
        {
            "msg-TOTAL_FORMS": "3",
            "msg-0-role": "user",
            "msg-0-content": "Question: {{ q }}",
            "msg-0-ORDER": "2",
            "msg-1-role": "system",
            "msg-1-content": "Be brief.",
            "msg-1-ORDER": "1",
            "msg-2-role": "assistant",
            "msg-2-content": "deleted",
            "msg-2-ORDER": "3",
            "msg-2-DELETE": "on",
        }
    )
    assert client_for(editor).post("/p/acme/prompts/chat/edit/", post).status_code == 302
    assert prompt.versions.get().messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Question: {{ q }}"},
    ]


def test_it_refuses_a_broken_template_with_its_line_and_saves_nothing(client_for, editor, project):
    prompt = PromptFactory(project=project, name="broken")
    response = client_for(editor).post("/p/acme/prompts/broken/edit/", _editor_post("ok\n{% if x %}\n{{ y }"))
    assert response.status_code == 400
    assert b"Line 3" in response.content
    assert b"{% if x %}" in response.content  # the draft is kept
    assert prompt.versions.count() == 0


def test_it_shows_a_conflict_instead_of_overwriting(client_for, editor, member, project):
    prompt = PromptFactory(project=project, name="shared")
    make_version(prompt, "v1 {{ x }}")
    make_version(prompt, "v2 by someone else {{ x }}", actor=member("editor", "other"))
    client = client_for(editor)
    response = client.post("/p/acme/prompts/shared/edit/", _editor_post("my edit {{ x }}", parent="1"))
    assert response.status_code == 409
    assert b"conflict" in response.content.lower() and b"other" in response.content
    assert b"my edit" in response.content
    assert prompt.versions.count() == 2
    # Saving again from the conflict page builds on v2.
    again = client.post("/p/acme/prompts/shared/edit/", _editor_post("my edit {{ x }}", parent="2"))
    assert again.status_code == 302
    assert prompt.versions.get(number=3).parent.number == 2


def test_the_live_preview_renders_with_samples_and_names_a_missing_variable(client_for, editor, project):
    PromptFactory(project=project, name="live")
    client = client_for(editor)
    post = _editor_post("Hi {{ name }} from {{ town }}", intent="preview")
    post.update({"var_names": "name", "var-name-type": "string", "var-name-sample": "Ann"})
    response = client.post("/p/acme/prompts/live/edit/", post, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"town" in response.content and b"missing" in response.content
    assert b'id="variables" hx-swap-oob="true"' in response.content  # a new variable row appears
    post.update({"var_names": "name,town", "var-town-type": "string", "var-town-sample": "Oslo"})
    response = client.post("/p/acme/prompts/live/edit/", post, HTTP_HX_REQUEST="true")
    assert b"Hi Ann from Oslo" in response.content
    assert b"hx-swap-oob" not in response.content


def test_the_preview_refuses_python_internals(client_for, editor, project):
    PromptFactory(project=project, name="evil")
    post = _editor_post("{{ ''.__class__.__mro__[1].__subclasses__() }}", intent="preview")
    response = client_for(editor).post("/p/acme/prompts/evil/edit/", post, HTTP_HX_REQUEST="true")
    assert b"subclasses" not in response.content.replace(b"__subclasses__()", b"")
    assert b"not allowed" in response.content or b"unsafe" in response.content


def test_it_compares_two_versions_word_by_word(client_for, editor, project):
    prompt = PromptFactory(project=project, name="cmp")
    make_version(prompt, "Say hello to {{ name }}", config={"temperature": 0.5})
    make_version(prompt, "Say goodbye to {{ name }}", config={"temperature": 0.9})
    page = client_for(editor).get("/p/acme/prompts/cmp/compare/", {"left": 1, "right": 2})
    body = page.content.decode()
    assert '<del class="diff-del">hello</del>' in body and '<ins class="diff-ins">goodbye</ins>' in body
    assert "0.5" in body and "0.9" in body


def test_the_diff_escapes_template_html(client_for, editor, project):
    prompt = PromptFactory(project=project, name="xss")
    make_version(prompt, "a")
    make_version(prompt, "<script>alert(1)</script>")
    body = client_for(editor).get("/p/acme/prompts/xss/compare/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_it_moves_and_rolls_back_a_label_from_the_prompt_page(client_for, editor, project):
    prompt = PromptFactory(project=project, name="rel")
    make_version(prompt, "a")
    make_version(prompt, "b")
    client = client_for(editor)
    client.post("/p/acme/prompts/rel/labels/move/", {"label": "production", "version": "1"})
    client.post("/p/acme/prompts/rel/labels/move/", {"label": "production", "version": "2", "reason": "ship"})
    assert prompt.labels.get(name="production").version.number == 2
    client.post("/p/acme/prompts/rel/labels/move/", {"label": "production", "version": "1", "rollback": "1"})
    assert prompt.labels.get(name="production").version.number == 1
    page = client.get("/p/acme/prompts/rel/").content.decode()
    assert "rolled back" in page and "ship" in page


def test_it_refuses_a_label_move_to_another_projects_version(client_for, editor, project):
    PromptFactory(project=project, name="mine")
    other = PromptFactory(project=ProjectFactory(slug="theirs"), name="mine")
    make_version(other, "theirs")
    response = client_for(editor).post("/p/acme/prompts/mine/labels/move/", {"label": "production", "version": "1"})
    assert response.status_code == 404
    assert not Label.objects.exists()
