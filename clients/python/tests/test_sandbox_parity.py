"""The client's copy of the sandbox renders and refuses exactly what the studio's does."""

from __future__ import annotations

import pytest
from prompt_studio import sandbox as client_sandbox

from apps.prompts import sandbox as server_sandbox

CASES = [
    ("Hello {{ name }}", {"name": "Ada"}),
    ("{% for t in tags %}{{ loop.index }}:{{ t | upper }} {% endfor %}", {"tags": ["a", "b"]}),
    ("{{ '%05d' % n }} {{ '{:>8}'.format(s) }} {{ s | center(12) }}", {"n": 42, "s": "x"}),
    (
        "{% set ns = namespace(total=0) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% endfor %}"
        "{{ ns.total }}",
        {},
    ),
    ("{{ d.k }} {{ d['k'] }} {{ items | join(', ') }}", {"d": {"k": 1}, "items": ["x", "y"]}),
    ("{{ missing }}", {}),
    ("{{ name.__class__ }}", {"name": "a"}),
    ("{{ 'a' * 10000000 }}", {}),
    ("{% for i in range(100000) %}{% endfor %}", {}),
    ("{{ 2 ** 100000 }}", {}),
    ("{% include 'x' %}", {}),
    ("{{ '%99999d' % 1 }}", {}),
    ("{{ 'ab' | replace('a', 'x' * 1000) }}", {}),
]


def _outcome(module, source, values):
    try:
        return "ok", module.render(source, values)
    except module.TemplateProblem as exc:
        return "refused", exc.message


@pytest.mark.parametrize(("source", "values"), CASES)
def test_it_renders_and_refuses_like_the_studio(source, values):
    assert _outcome(client_sandbox, source, values) == _outcome(server_sandbox, source, values)


@pytest.mark.parametrize(
    "values", [{}, {"name": 3}, {"name": "a", "n": "1"}, {"name": "a", "n": True}, {"name": "a", "n": 2.5}]
)
def test_it_checks_variables_like_the_studio(values):
    specs = [{"name": "name", "type": "string"}, {"name": "n", "type": "number"}]
    outcomes = []
    for module in (client_sandbox, server_sandbox):
        try:
            module.validate_values(specs, values)
            outcomes.append("ok")
        except module.TemplateProblem as exc:
            outcomes.append(exc.message)
    assert outcomes[0] == outcomes[1]
