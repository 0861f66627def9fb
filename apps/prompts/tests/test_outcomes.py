"""The outcomes the services give their callers (the REST API among them), decided under the row locks."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.prompts import services
from apps.prompts.content import build_content
from apps.prompts.models import LabelMove
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def _text(template: str):
    return build_content(kind="text", template=template, messages=None, config={}, variable_specs=[])


def test_saving_the_newest_content_again_gives_that_version_and_saves_nothing(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    first = make_version(prompt, "Hello {{ name }}")
    saved_events = AuditEvent.objects.filter(action="prompt.version_saved").count()
    version, created = services.prompt_version_save(
        prompt=prompt, content=_text("Hello {{ name }}"), parent_number=1, message="again", actor=editor
    )
    assert (version, created) == (first, False)
    assert prompt.versions.count() == 1
    assert AuditEvent.objects.filter(action="prompt.version_saved").count() == saved_events
    version, created = services.prompt_version_save(
        prompt=prompt, content=_text("Hi {{ name }}"), parent_number=1, message="new", actor=editor
    )
    assert created and version.number == 2


def test_a_stale_parent_is_refused_with_its_code_even_for_the_same_content(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}")
    make_version(prompt, "Hi {{ name }}")
    with pytest.raises(services.StaleParent) as refused:
        services.prompt_version_save(
            prompt=prompt, content=_text("Hi {{ name }}"), parent_number=1, message="", actor=editor
        )
    assert refused.value.code == "stale_parent" and refused.value.newest.number == 2


def test_label_set_says_whether_it_moved_and_records_only_a_real_move(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    v1, v2 = make_version(prompt, "Hello"), make_version(prompt, "Hi")
    created = services.label_set(prompt=prompt, label_name="production", version=v1, actor=editor)
    assert (created.moved, created.previous) == (True, None)
    moved = services.label_set(prompt=prompt, label_name="production", version=v2, actor=editor)
    assert (moved.moved, moved.previous) == (True, v1)
    again = services.label_set(prompt=prompt, label_name="production", version=v2, actor=editor)
    assert (again.moved, again.previous, again.label.version) == (False, v2, v2)
    assert LabelMove.objects.filter(prompt=prompt, label_name="production").count() == 2
    with pytest.raises(services.PromptError, match="already points at v2"):
        services.label_move(prompt=prompt, label_name="production", version=v2, actor=editor)


def test_a_guard_names_its_refusal_with_a_code(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    version = make_version(prompt, "Hello")

    def guard(attempt):
        raise services.LabelMoveRefused("frozen for the release train", code="label_frozen")

    services.register_label_move_guard(guard)
    try:
        with pytest.raises(services.LabelMoveRefused) as refused:
            services.label_set(prompt=prompt, label_name="production", version=version, actor=editor)
    finally:
        services._label_move_guards.remove(guard)
    assert refused.value.code == "label_frozen"
    assert not prompt.labels.filter(name="production").exists()
