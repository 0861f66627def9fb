"""Extract a snippet: a piece of a version moves into a new prompt and is included where it was."""

import pytest

from apps.prompts import includes, services
from apps.prompts.content import ContentProblem, content_of, render_content
from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db

VOICE = "Write warmly and briefly, as {{ brand }} does."


def _greet(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    version = make_version(prompt, VOICE + "\nGreet {{ name }}.", actor=editor,
                           samples={"brand": "Acme", "name": "Ada"})  # fmt: skip
    return prompt, version


def test_the_text_moves_into_a_snippet_and_the_prompt_renders_the_same(project, editor):
    prompt, v1 = _greet(project, editor)
    v2 = services.snippet_extract(version=v1, text=VOICE, snippet_name="brand-voice", actor=editor)
    assert v2.number == 2 and v2.parent_id == v1.pk
    assert v2.template == '{% include "brand-voice@latest" %}\nGreet {{ name }}.'
    snippet = Prompt.objects.get(project=project, name="brand-voice")
    (snippet_v1,) = snippet.versions.all()
    assert snippet_v1.template == VOICE
    assert [(v["name"], v["sample"]) for v in snippet_v1.variables] == [("brand", "Acme")]  # the spec came along
    samples = {"brand": "Acme", "name": "Ada"}
    assert render_content(content_of(v2), samples) == render_content(content_of(v1), samples)
    assert content_of(v2).includes == {"brand-voice@latest": "brand-voice:1"}
    assert [d.prompt.name for d in includes.dependents(snippet=snippet)] == ["greet"]
    assert not prompt.labels.exists()  # no label moved


def test_a_chat_message_can_give_its_snippet(project, editor):
    prompt = PromptFactory(project=project, name="chat")
    chat = [{"role": "system", "content": VOICE}, {"role": "user", "content": "{{ q }}"}]
    v1 = make_version(prompt, kind="chat", actor=editor, samples={"brand": "Acme", "q": "hi"}, messages=chat)
    v2 = services.snippet_extract(version=v1, text=VOICE, snippet_name="voice", actor=editor)
    assert v2.messages[0]["content"] == '{% include "voice@latest" %}'
    samples = {"brand": "Acme", "q": "hi"}
    assert render_content(content_of(v2), samples) == render_content(content_of(v1), samples)


@pytest.mark.parametrize(
    ("text", "name", "problem"),
    [
        ("Not in the prompt", "voice", "not in this version"),
        ("   ", "voice", "Paste the text"),
        ("{% if brand %}", "voice", ""),  # half a tag: the snippet alone does not parse
        (VOICE, "greet", "already exists"),
        (VOICE, "Bad Name!", "lower-case"),
    ],
)
def test_what_cannot_be_extracted_saves_nothing(project, editor, text, name, problem):
    prompt, v1 = _greet(project, editor)
    with pytest.raises((services.PromptError, ContentProblem), match=problem):
        services.snippet_extract(version=v1, text=text, snippet_name=name, actor=editor)
    assert Prompt.objects.filter(project=project).count() == 1 and prompt.versions.count() == 1


def test_an_older_version_is_refused_as_stale(project, editor):
    prompt, v1 = _greet(project, editor)
    make_version(prompt, VOICE + "\nHello {{ name }}.", actor=editor, samples={"brand": "Acme", "name": "Ada"})
    with pytest.raises(services.StaleParent):
        services.snippet_extract(version=v1, text=VOICE, snippet_name="brand-voice", actor=editor)
    assert not Prompt.objects.filter(name="brand-voice").exists()


def test_the_version_page_extracts_for_editors_only(project, editor, member, client_for):
    prompt, v1 = _greet(project, editor)
    url = f"/p/{project.slug}/prompts/greet/v/1/extract/"
    page = client_for(editor).get(f"/p/{project.slug}/prompts/greet/v/1/")
    assert b'id="extract-form"' in page.content
    viewer = member("viewer", "vic")
    assert b'id="extract-form"' not in client_for(viewer).get(f"/p/{project.slug}/prompts/greet/v/1/").content
    assert client_for(viewer).post(url, {"text": VOICE, "snippet_name": "voice"}).status_code == 403
    refused = client_for(editor).post(url, {"text": "nowhere", "snippet_name": "voice"})
    assert refused.status_code == 400 and b'id="extract-problem"' in refused.content and b"nowhere" in refused.content
    done = client_for(editor).post(url, {"text": VOICE, "snippet_name": "voice"})
    assert done.status_code == 302 and done["Location"].endswith("/prompts/greet/v/2/")
    snippet_page = client_for(editor).get(f"/p/{project.slug}/prompts/voice/")
    assert b"greet" in snippet_page.content and b'id="included-by"' in snippet_page.content
