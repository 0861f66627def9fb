import pytest

from apps.prompts import sandbox
from apps.prompts.sandbox import TemplateProblem


def test_it_lists_variables_in_order_of_first_use():
    source = "{{ b }} {% for x in items %}{{ x }}{{ a.name }}{% endfor %}{{ b }}{% set local = 1 %}{{ local }}"
    assert sandbox.parse(source) == ["b", "items", "a"]


def test_it_refuses_a_syntax_error_with_its_line():
    with pytest.raises(TemplateProblem) as caught:
        sandbox.parse("line one\nline two\nHello {{ name }\nline four")
    assert caught.value.line == 3
    assert "unexpected '}'" in caught.value.message


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("{% include 'x' %}", "is not a snippet"),  # an include names a prompt@label, never a file
        ("{% include '/etc/passwd' %}", "is not a snippet"),
        ("{% import 'x' as y %}", "not supported"),
        ("{% extends 'base' %}", "not supported"),
    ],
)
def test_it_refuses_tags_that_reach_other_templates(tag, why):
    with pytest.raises(TemplateProblem, match=why):
        sandbox.parse(tag)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x|attr('__class__') }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ x.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ self.__dict__ }}",
        "{{ namespace.__init__.__globals__ }}",
    ],
)
def test_it_refuses_templates_that_reach_python_internals(source):
    with pytest.raises(TemplateProblem) as caught:
        sandbox.render(source, {"x": "text"})
    message = caught.value.message
    assert "class" not in message.lower() or "unsafe" in message.lower() or "not allowed" in message.lower()
    assert "<class" not in message


def test_it_does_not_leak_internals_through_format_strings():
    with pytest.raises(TemplateProblem):
        sandbox.render("{{ '%s'|format(x.__class__) }}", {"x": 1})


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 1000000000 }}",
        "{{ [1] * 1000000000 }}",
        "{{ 'x'|center(900000000) }}",
        "{{ 'x'.ljust(900000000) }}",
        "{{ '%900000000d' % 1 }}",
        "{{ '{:>900000000}'.format(1) }}",
        "{{ ('a' * 1000)|replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' * 10) }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}xx{% endfor %}{% endfor %}",
        "{{ 10 ** 100000 }}",
    ],
)
def test_it_stops_templates_that_would_render_huge_output(source):
    with pytest.raises(TemplateProblem):
        sandbox.render(source, {}, timeout=1.0, max_chars=100_000)


def test_it_stops_a_slow_template_at_the_time_limit():
    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem, match="time limit"):
        sandbox.render(source, {}, timeout=0.05)


def test_it_stops_nested_loops_over_the_callers_data_at_the_time_limit():
    items = list(range(5000))
    with pytest.raises(TemplateProblem, match="time limit"):
        sandbox.render(
            "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", {"items": items}, timeout=0.05
        )
    text = "x" * 5000
    with pytest.raises(TemplateProblem, match="time limit"):
        sandbox.render("{% for a in t %}{% for b in t %}{% endfor %}{% endfor %}", {"t": text}, timeout=0.05)


def test_it_refuses_a_huge_range():
    with pytest.raises(TemplateProblem, match="range"):
        sandbox.render("{% for i in range(10000000) %}{% endfor %}", {})


def test_it_names_a_missing_variable():
    with pytest.raises(TemplateProblem) as caught:
        sandbox.render("Hello {{ name }}, about {{ topic }}", {"name": "Ann"})
    assert caught.value.variable == "topic"
    assert "topic" in str(caught.value)


def test_it_renders_filters_loops_and_conditions():
    source = "{% for t in tags %}{{ t|upper }}{% if not loop.last %}, {% endif %}{% endfor %} ({{ n + 1 }})"
    assert sandbox.render(source, {"tags": ["a", "b"], "n": 1}) == "A, B (2)"


def test_it_survives_recursion():
    with pytest.raises(TemplateProblem):
        sandbox.render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {})


@pytest.mark.parametrize(
    "spec,value,ok",
    [
        ({"name": "n", "type": "number"}, 3, True),
        ({"name": "n", "type": "number"}, True, False),
        ({"name": "n", "type": "number"}, "3", False),
        ({"name": "b", "type": "boolean"}, False, True),
        ({"name": "l", "type": "list"}, ["x"], True),
        ({"name": "l", "type": "list"}, {"x": 1}, False),
        ({"name": "o", "type": "object"}, {"x": 1}, True),
        ({"name": "s", "type": "string"}, 5, False),
    ],
)
def test_it_checks_variable_types(spec, value, ok):
    if ok:
        sandbox.validate_values([spec], {spec["name"]: value})
    else:
        with pytest.raises(TemplateProblem, match=f"'{spec['name']}' must be a {spec['type']}"):
            sandbox.validate_values([spec], {spec["name"]: value})


def test_it_coerces_sample_values_typed_in_a_form():
    assert sandbox.coerce_sample("number", "3") == 3
    assert sandbox.coerce_sample("number", "2.5") == 2.5
    assert sandbox.coerce_sample("boolean", "true") is True
    assert sandbox.coerce_sample("list", '["a"]') == ["a"]
    with pytest.raises(ValueError, match="not valid JSON"):
        sandbox.coerce_sample("object", "{oops")
