"""Hostile templates rendered by the Python client: a RenderError or a text within the limits, never a hang."""

from __future__ import annotations

import time

import pytest
from prompt_studio import sandbox
from prompt_studio.client import Prompt, RenderError

from apps.prompts.tests.hostile import PAYLOADS

GENEROUS_SECONDS = 3.0  # the client's limit is 200 ms (sandbox.RENDER_TIMEOUT_SECONDS); the test machine is shared
IDS = [name for name, _, _ in PAYLOADS]


def _type(value) -> str:
    if isinstance(value, list):
        return "list"
    return "number" if isinstance(value, int) else "string"


@pytest.mark.parametrize(("name", "source", "values"), PAYLOADS, ids=IDS)
def test_each_is_refused_or_rendered_within_the_limits(name, source, values):
    document = {"name": "hostile", "version": 1, "type": "text", "template": source,
                "variables": [{"name": key, "type": _type(value)} for key, value in values.items()]}  # fmt: skip
    prompt = Prompt.from_document(document)
    started = time.monotonic()
    try:
        text = prompt.render(**values)
    except RenderError as exc:
        assert str(exc)
    else:
        assert len(text) <= sandbox.RENDER_MAX_CHARS
    assert time.monotonic() - started < GENEROUS_SECONDS


def test_a_chat_prompt_renders_its_messages_in_one_worker_round_trip():
    messages = [{"role": "system", "content": "{{ n * 2 }}"}, {"role": "user", "content": "{{ n ** 2 }}"}]
    document = {"name": "chat", "version": 1, "type": "chat", "variables": [{"name": "n", "type": "number"}],
                "messages": messages}  # fmt: skip
    assert Prompt.from_document(document).render(n=3) == [
        {"role": "system", "content": "6"},
        {"role": "user", "content": "9"},
    ]
    document["messages"][1]["content"] = "{{ '{:999999999}'.format(n) }}"
    with pytest.raises(RenderError, match="message 2 \\(user\\).*format widths"):
        Prompt.from_document(document).render(n=3)
