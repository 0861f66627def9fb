"""Includes in the sandbox itself: composition, and the limits holding when the heavy part is in a snippet."""

from __future__ import annotations

import os
import time

import pytest
from prompt_studio import sandbox

from apps.prompts.tests.hostile import PAYLOADS

GENEROUS_SECONDS = 3.0  # the limit is 200 ms; the test machine is shared
IDS = [name for name, _, _ in PAYLOADS]


def snippet(source: str, **inner) -> dict:
    return {"source": source, "includes": inner}


def test_it_inlines_a_snippet_with_the_prompts_variables():
    tree = {"tone@production": snippet("Be {{ mood }}.")}
    source = 'Hello {{ name }}. {% include "tone@production" %}'
    assert sandbox.parse(source, includes=tree) == ["name", "mood"]
    assert sandbox.render(source, {"name": "Ada", "mood": "kind"}, includes=tree) == "Hello Ada. Be kind."


def test_a_snippet_keeps_its_own_pins_and_its_own_scope():
    # The prompt pins sig@production to one text, the snippet pinned it to another when it was saved.
    tree = {
        "tone@production": snippet(
            '{% set x = "inner" %}{{ x }}/{% include "sig@production" %}', **{"sig@production": snippet("old sig")}
        ),  # fmt: skip
        "sig@production": snippet("new sig"),
    }
    source = '{% set x = "outer" %}{% include "tone@production" %}|{% include "sig@production" %}|{{ x }}'
    assert sandbox.render(source, {}, includes=tree) == "inner/old sig|new sig|outer"


def test_a_snippet_in_a_loop_sees_the_loop_variable():
    tree = {"item@production": snippet("- {{ it }}\n")}
    source = '{% for it in items %}{% include "item@production" %}{% endfor %}'
    assert sandbox.render(source, {"items": ["a", "b"]}, includes=tree) == "- a\n- b\n"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{% include name %}", "in quotes"),
        ('{% include ["a@b", "c@d"] %}', "in quotes"),
        ('{% include "../../etc/passwd" %}', "is not a snippet"),
        ('{% include "/etc/passwd@production" %}', "is not a snippet"),
        ('{% include "tone@production" ignore missing %}', "ignore missing"),
        ('{% include "tone@production" without context %}', "without context"),
    ],
)
def test_it_refuses_includes_that_could_name_anything_but_a_snippet(source, why):
    with pytest.raises(sandbox.TemplateProblem, match=why) as caught:
        sandbox.parse(source)
    assert caught.value.line == 1


def test_an_include_not_in_the_tree_is_refused_with_its_line_never_looked_up():
    assert sandbox.ENVIRONMENT.loader is None  # no loader: nothing but the tree the caller passes can be included
    with pytest.raises(sandbox.TemplateProblem, match="'other@production' is not resolved") as caught:
        sandbox.render('one\ntwo\n{% include "other@production" %}', {}, includes={"tone@production": snippet("x")})
    assert caught.value.line == 3
    with pytest.raises(sandbox.TemplateProblem, match="is not resolved"):
        sandbox.parse('{% include "tone@production" %}', includes={})


def test_a_problem_inside_a_snippet_is_shown_on_the_prompts_include_line():
    tree = {"tone@production": snippet("ok\n{{ x|nosuchfilter }}")}
    with pytest.raises(sandbox.TemplateProblem) as caught:
        sandbox.parse('first\n{% include "tone@production" %}', includes=tree)
    assert caught.value.line == 2
    assert "in the snippet 'tone@production': line 2: unknown filter 'nosuchfilter'" in caught.value.message


def _chain(depth: int, uses: int = 1) -> dict:
    """s0 includes s1 `uses` times, which includes s2 ..., `depth` levels."""
    tree: dict = {}
    for level in reversed(range(depth)):
        body = "".join(f'{{% include "s{level + 1}@p" %}}' for _ in range(uses)) if tree else "end"
        tree = {f"s{level}@p": snippet(body, **tree)}
    return tree


def test_it_bounds_how_deep_snippets_nest():
    within = _chain(sandbox.MAX_INCLUDE_DEPTH)
    assert sandbox.render('{% include "s0@p" %}', {}, includes=within) == "end"
    with pytest.raises(sandbox.TemplateProblem, match="levels deep") as caught:
        sandbox.render('x\n{% include "s0@p" %}', {}, includes=_chain(sandbox.MAX_INCLUDE_DEPTH + 1))
    assert caught.value.line == 2


def test_an_include_bomb_is_refused_before_it_is_compiled():
    # Each level includes the next twice: 2**5 = 32 copies of the innermost text from one include tag.
    bomb = _chain(5, uses=2)
    started = time.monotonic()
    with pytest.raises(sandbox.TemplateProblem, match=f"at most {sandbox.MAX_INCLUDES} includes"):
        sandbox.render('{% include "s0@p" %}{% include "s0@p" %}', {}, includes=bomb)
    assert time.monotonic() - started < GENEROUS_SECONDS
    big = {"big@p": snippet("x" * 60_000)}
    with pytest.raises(sandbox.TemplateProblem, match="longer than"):
        sandbox.render('{% include "big@p" %}' * 4, {}, includes=big)


def test_include_tree_follows_pins_and_refuses_a_cycle_or_a_missing_text():
    table = {
        "tone:2": {"template": '{% include "sig@production" %}!', "includes": {"sig@production": "sig:1"}},
        "sig:1": {"template": "sig", "includes": {}},
    }
    tree = sandbox.include_tree({"tone@production": "tone:2"}, table)
    assert sandbox.render('{% include "tone@production" %}', {}, includes=tree) == "sig!"
    table["sig:1"]["includes"] = {"tone@production": "tone:2"}
    with pytest.raises(sandbox.TemplateProblem, match="cycle: tone:2 → sig:1 → tone:2"):
        sandbox.include_tree({"tone@production": "tone:2"}, table)
    with pytest.raises(sandbox.TemplateProblem, match="missing"):
        sandbox.include_tree({"tone@production": "tone:9"}, table)


# --- the limits hold when the heavy part is in a snippet ---------------------------------------------------------


def _hosted(source: str, values: dict) -> tuple[str, dict]:
    """The hostile template as a snippet two levels down, included from an innocent prompt."""
    tree = {"wrapper@production": snippet('Intro. {% include "payload@production" %}',
                                          **{"payload@production": snippet(source)})}  # fmt: skip
    return 'Hello {{ 1 }}. {% include "wrapper@production" %} Bye.', tree


@pytest.mark.parametrize(("name", "source", "values"), PAYLOADS, ids=IDS)
def test_each_hostile_payload_in_a_snippet_is_refused_or_rendered_within_the_limits(name, source, values):
    prompt, tree = _hosted(source, values)
    started = time.monotonic()
    try:
        text = sandbox.render(prompt, values, includes=tree)
    except sandbox.TemplateProblem as exc:
        assert str(exc)
    else:
        assert len(text) <= sandbox.RENDER_MAX_CHARS
    assert time.monotonic() - started < GENEROUS_SECONDS


def test_a_slow_snippet_hits_the_one_deadline_of_the_render():
    prompt, tree = _hosted("{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", {})
    with pytest.raises(sandbox.TemplateProblem, match="time limit"):
        sandbox.render(prompt, {"items": list(range(10_000))}, includes=tree)


def test_a_snippet_that_writes_too_much_hits_the_output_cap():
    prompt, tree = _hosted("{% for i in range(10000) %}{{ text }}{% endfor %}", {})
    with pytest.raises(sandbox.TemplateProblem, match="exceed the limit of 1,000 characters"):
        sandbox.render(prompt, {"text": "x" * 50}, includes=tree, max_chars=1_000)


def test_a_heavy_snippet_makes_the_whole_prompt_render_in_a_worker_process():
    prompt, tree = _hosted("{{ 7 * 6 }}", {})
    assert sandbox.render(prompt, {}, includes=tree) == "Hello 1. Intro. 42 Bye."
    prompt, tree = _hosted("{{ 2 ** 1000 }}", {})
    assert not sandbox._compile(prompt, sandbox.include_key(tree)).plain
    assert sandbox._compile(prompt, sandbox.include_key(_hosted("{{ name }}", {})[1])).plain
    if os.name == "posix":
        # A snippet that would grow a value past the limits is stopped; the pool renders the next template.
        prompt, tree = _hosted("{% set l = [0] * 30000 %}{% for a in l %}{% set m = l * 1000 %}{% endfor %}", {})
        with pytest.raises(sandbox.TemplateProblem):
            sandbox.render(prompt, {}, includes=tree)
        assert sandbox.render("{{ 2 ** 10 }}", {}) == "1024"  # the pool carries on
