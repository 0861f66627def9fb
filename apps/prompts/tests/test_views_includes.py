"""The pages of composition: a snippet's dependents, the re-pin button, the pins of a version, the editor's refusal."""

from __future__ import annotations

import pytest

from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.prompts.tests.test_views import _editor_post

pytestmark = pytest.mark.django_db


def release(prompt, version, label="production"):
    services.label_move(prompt=prompt, label_name=label, version=version, actor="test")


@pytest.fixture
def composed(project):
    tone = PromptFactory(project=project, name="tone")
    release(tone, make_version(tone, "Be {{ mood }}."))
    main = PromptFactory(project=project, name="main")
    v1 = make_version(main, 'Hi.\n{% include "tone@production" %}', samples={"mood": "calm"})
    release(main, v1)
    release(main, v1, "staging")
    side = PromptFactory(project=project, name="side")
    make_version(side, '{% include "tone@latest" %}')
    return {"tone": tone, "main": main, "side": side}


def test_a_snippets_page_lists_every_prompt_and_label_that_includes_it(client_for, editor, composed):
    page = client_for(editor).get("/p/acme/prompts/tone/").content.decode()
    included_by = page[page.index('id="included-by"') :]
    assert "2 prompts include tone" in included_by
    assert 'id="dependents-production"' in included_by and 'id="dependents-latest"' in included_by
    main_row = included_by[included_by.index('data-prompt="main"') :][:900]
    assert "production" in main_row and "staging" in main_row and "tone v1" in main_row
    assert "Re-pin" not in included_by  # nothing is stale yet


def test_moving_the_snippets_label_offers_the_dependents_new_versions(client_for, editor, composed):
    client = client_for(editor)
    make_version(composed["tone"], "Be very {{ mood }}.")
    moved = client.post("/p/acme/prompts/tone/labels/move/", {"label": "production", "version": "2"}, follow=True)
    page = moved.content.decode()
    assert "1 prompt(s) include tone@production and still render an older version (main)" in page
    assert "Re-pin 1 dependent to v2" in page

    done = client.post("/p/acme/prompts/tone/dependents/repin/", {"label": "production"}, follow=True)
    assert "Saved main v2 with tone@production re-pinned" in done.content.decode()
    version_page = client.get("/p/acme/prompts/main/v/2/").content.decode()
    assert "Request release" in version_page and "tone v2" in version_page
    compare = client.get("/p/acme/prompts/main/compare/?left=1&right=2").content.decode()
    snippets = compare[compare.index('id="includes-diff"') :]
    assert "tone v1" in snippets and "tone v2" in snippets
    assert "The two are identical" not in compare
    assert composed["main"].labels.get(name="production").version.number == 1  # a re-pin releases nothing


def test_the_editor_refuses_a_missing_snippet_with_its_line(client_for, editor, composed):
    response = client_for(editor).post(
        "/p/acme/prompts/main/edit/", _editor_post('Hi.\n\n{% include "tone@canary" %}', parent="1")
    )
    assert response.status_code == 400
    assert (
        "line 3: the snippet &#x27;tone@canary&#x27;: tone has no label &#x27;canary&#x27;" in response.content.decode()
    )


def test_the_editor_preview_renders_the_snippet(client_for, editor, composed):
    response = client_for(editor).post(
        "/p/acme/prompts/main/edit/",
        _editor_post(
            'Hello.\n{% include "tone@production" %}',
            parent="1",
            intent="preview",
            var_names="mood",
            **{"var-mood-sample": "kind"},
        ),
        HTTP_HX_REQUEST="true",
    )
    assert "Be kind." in response.content.decode()
