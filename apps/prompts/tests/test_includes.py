"""Includes resolved and pinned at save: pinning, missing snippets, cycles, other projects, dependents, re-pin."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from apps.accounts.tests.factories import ProjectFactory
from apps.prompts import includes, services
from apps.prompts.content import ContentProblem, build_content, content_of, render_content
from apps.prompts.models import IncludePin
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def release(prompt, version, label="production"):
    services.label_move(prompt=prompt, label_name=label, version=version, actor="test")


@pytest.fixture
def tone(project):
    """A snippet 'tone' with v1 on production."""
    prompt = PromptFactory(project=project, name="tone")
    release(prompt, make_version(prompt, "Be {{ mood }}."))
    return prompt


def test_it_pins_the_version_the_label_points_at_and_keeps_rendering_it(project, tone):
    main = PromptFactory(project=project, name="main")
    v1 = make_version(main, 'Hi {{ name }}.\n{% include "tone@production" %}', samples={"name": "Ada"})
    assert [spec["name"] for spec in v1.variables] == ["name", "mood"]
    assert [(p.ref, p.label_name, p.snippet_version.number) for p in includes.includes_of(v1)] == [
        ("tone@production", "production", 1)
    ]
    release(tone, make_version(tone, "Stay {{ mood }}!"))

    again = content_of(v1)
    assert render_content(again, {"name": "Ada", "mood": "calm"}) == "Hi Ada.\nBe calm."
    assert again.hash() == v1.content_hash  # what the release gate recomputes
    v2 = make_version(main, 'Hi {{ name }}.\n{% include "tone@production" %}', samples={"name": "Ada"})
    assert render_content(content_of(v2), {"name": "Ada", "mood": "calm"}) == "Hi Ada.\nStay calm!"
    assert v2.content_hash != v1.content_hash  # the same text, pinned elsewhere, is a new version


def test_a_pin_cannot_be_changed_once_saved(project, tone):
    main = PromptFactory(project=project, name="main")
    make_version(main, '{% include "tone@production" %}')
    release(tone, make_version(tone, "other"))
    with pytest.raises(IntegrityError), transaction.atomic():
        IncludePin.objects.update(snippet_version=tone.versions.get(number=2))


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ('line one\n{% include "nope@production" %}', "no prompt called 'nope' in this project"),
        ('line one\n{% include "tone@staging" %}', "tone has no label 'staging'"),
    ],
)
def test_a_missing_snippet_is_refused_at_save_with_its_line(project, tone, source, why):
    main = PromptFactory(project=project, name="main")
    with pytest.raises(ContentProblem, match=why) as caught:
        make_version(main, source)
    assert caught.value.line == 2
    assert not main.versions.exists()


def test_a_chat_prompt_cannot_be_included(project):
    chat = PromptFactory(project=project, name="chat")
    release(chat, make_version(chat, kind="chat", messages=[{"role": "user", "content": "hi"}]))
    with pytest.raises(ContentProblem, match="only a text prompt can be included"):
        make_version(PromptFactory(project=project), '{% include "chat@production" %}')


def test_a_cycle_is_refused_at_save_with_its_line(project, tone):
    main = PromptFactory(project=project, name="main")
    release(main, make_version(main, 'Main {% include "tone@production" %}'))
    with pytest.raises(ContentProblem, match="a prompt cannot include itself") as caught:
        make_version(tone, 'one\ntwo\n{% include "main@production" %}')
    assert caught.value.line == 3
    assert "tone → main → tone" in str(caught.value)
    with pytest.raises(ContentProblem, match="is this prompt") as caught:
        make_version(tone, '{% include "tone@latest" %}')
    assert tone.versions.count() == 1


def test_a_chat_message_can_include_a_snippet_and_messages_render_with_it(project, tone):
    chat = PromptFactory(project=project, name="chat")
    version = make_version(
        chat,
        kind="chat",
        messages=[
            {"role": "system", "content": '{% include "tone@production" %}'},
            {"role": "user", "content": "{{ q }}"},
        ],
    )
    assert render_content(content_of(version), {"mood": "brief", "q": "why?"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "why?"},
    ]


def test_includes_never_reach_another_projects_prompts(project, tone):
    other = ProjectFactory(name="Other", slug="other")
    theirs = PromptFactory(project=other, name="secret")
    release(theirs, make_version(theirs, "their secret"))
    with pytest.raises(ContentProblem, match="no prompt called 'secret' in this project"):
        make_version(PromptFactory(project=project), '{% include "secret@production" %}')
    # A prompt of the same name in the other project is never what this project's include renders.
    their_tone = PromptFactory(project=other, name="tone")
    release(their_tone, make_version(their_tone, "THEIR TONE"))
    mine = make_version(PromptFactory(project=project), '{% include "tone@production" %}')
    assert render_content(content_of(mine), {"mood": "x"}) == "Be x."
    # A pin naming another project's version is refused by the save itself, whatever built the content.
    content = build_content(kind="text", template='{% include "tone@production" %}', project=other)
    with pytest.raises(ContentProblem, match="not this project's"):
        services.prompt_version_create(prompt=PromptFactory(project=project), content=content, parent_number=None,
                                       message="", actor="t")  # fmt: skip


def test_a_snippets_own_pins_hold_inside_the_prompt(project, tone):
    sig = PromptFactory(project=project, name="sig")
    release(sig, make_version(sig, "old sig"))
    release(tone, make_version(tone, 'Be {{ mood }}. {% include "sig@production" %}'))  # tone v2 pins sig v1
    release(sig, make_version(sig, "new sig"))
    main = make_version(
        PromptFactory(project=project, name="main"), '{% include "tone@production" %} / {% include "sig@production" %}'
    )
    assert render_content(content_of(main), {"mood": "calm"}) == "Be calm. old sig / new sig"


def test_dependents_list_each_prompt_and_label_and_repin_offers_new_versions(project, tone, editor):
    main = PromptFactory(project=project, name="main")
    v1 = make_version(main, 'A {% include "tone@production" %}')
    release(main, v1)
    release(main, v1, "staging")
    other = PromptFactory(project=project, name="other")
    make_version(other, 'B {% include "tone@latest" %}')
    make_version(PromptFactory(project=project, name="plain"), "no include")

    found = includes.dependents(snippet=tone)
    assert [(d.prompt.name, d.version.number, d.labels, d.ref, d.stale) for d in found] == [
        ("main", 1, ["production", "staging"], "tone@production", False),
        ("other", 1, [], "tone@latest", False),
    ]
    release(tone, make_version(tone, "Be very {{ mood }}."))
    assert [d.stale for d in includes.dependents(snippet=tone, label_name="production")] == [True]

    done = services.dependents_repin(snippet=tone, label_name="production", actor=editor)
    assert [(r.prompt.name, r.version.number) for r in done] == [("main", 2)]
    assert render_content(content_of(done[0].version), {"mood": "calm"}) == "A Be very calm."
    assert "Re-pin tone@production to v2 (was v1)" == done[0].version.message
    assert main.labels.get(name="production").version == v1  # nothing released by a re-pin
    assert services.dependents_repin(snippet=tone, label_name="production", actor=editor) == []


def test_a_snippet_with_dependents_cannot_be_deleted_alone_but_its_project_can(project):
    from django.db.models import RestrictedError

    snippet = PromptFactory(project=project, name="snippet")
    make_version(snippet, "shared text")
    make_version(PromptFactory(project=project, name="main"), '{% include "snippet@latest" %}')
    with pytest.raises(RestrictedError), transaction.atomic():
        snippet.delete()
    project.delete()
    assert not IncludePin.objects.exists()


def test_a_snippets_variables_come_with_their_type_description_and_sample(project):
    snippet = PromptFactory(project=project, name="format")
    release(snippet, make_version(snippet, "{% for p in points %}- {{ p }}\n{% endfor %}", samples={"points": ["a"]}))
    main = make_version(PromptFactory(project=project), 'Hi {{ name }}\n{% include "format@production" %}',
                        samples={"name": "Ada"})  # fmt: skip
    assert main.variables == [
        {"name": "name", "type": "string", "description": "", "sample": "Ada"},
        {"name": "points", "type": "list", "description": "", "sample": ["a"]},
    ]
    assert render_content(content_of(main), main.sample_values()) == "Hi Ada\n- a\n"
