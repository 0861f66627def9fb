"""The evaluator forms: each kind's fields map to the parameters the runner reads (evaluator_params), what a kind
lacks is named, and the JSON box only adds to the fields."""

import pytest

from apps.experiments import evaluators
from apps.experiments.forms import EvaluatorForm, evaluator_params
from apps.experiments.rubrics import RUBRICS

ENDPOINTS = {"Strict judge": 7, "Embedder": 9}


def _form(**fields):
    data = {f"e-{key}": value for key, value in fields.items()}
    form = EvaluatorForm(data, prefix="e", endpoints=ENDPOINTS, judge_prompts=[(31, "llm-judge v2")])
    return form


@pytest.mark.parametrize(
    ("kind", "fields", "params"),
    [
        ("exact_match", {"exact_case_sensitive": "on"}, {"case_sensitive": True}),
        ("contains", {"contains_value": "refund"}, {"value": "refund", "case_sensitive": False}),
        ("not_contains", {"contains_value": "As an AI", "contains_case_sensitive": "on"},
         {"value": "As an AI", "case_sensitive": True}),
        ("contains", {"contains_value": "ignored", "contains_expected": "on"},
         {"expected": True, "case_sensitive": False}),
        ("regex", {"regex_pattern": r"^\d+$", "regex_ignore_case": "on"}, {"pattern": r"^\d+$", "ignore_case": True}),
        ("valid_json", {}, {}),
        ("json_schema", {"schema": '{"type": "object"}'}, {"schema": {"type": "object"}}),
        ("length", {"length_max": "40", "length_unit": "words"}, {"max": 40, "unit": "words"}),
        ("numeric", {"numeric_tolerance": "0.05", "numeric_relative": "on"}, {"tolerance": 0.05, "relative": True}),
        ("numeric", {}, {"tolerance": 0.0, "relative": False}),
        ("similarity", {"endpoint": "Embedder"}, {"endpoint": "Embedder", "endpoint_id": 9, "threshold": 0.8}),
    ],
)  # fmt: skip
def test_each_kinds_fields_become_its_parameters(kind, fields, params):
    form = _form(kind=kind, name="check", **fields)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["params"] == params
    if kind in evaluators.PURE:  # the runner's own evaluator accepts them
        evaluators.evaluate_pure(kind, '{"a": 1}', "1", params)


def test_a_judge_from_the_library_is_endpoint_by_name_rubric_scale_and_pinned_prompt():
    form = _form(kind="llm_judge", name="faithful", endpoint="Strict judge", rubric_preset="faithfulness",
                 rubric="", scale_min="1", scale_max="5", pass_at="4", judge_prompt="31")  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.cleaned_data["params"] == {
        "endpoint": "Strict judge",
        "endpoint_id": 7,
        "rubric_key": "faithfulness",
        "rubric": RUBRICS["faithfulness"].text,  # an empty rubric box takes the library's text
        "scale_min": 1,
        "scale_max": 5,
        "pass_at": 4,
        "judge_prompt_version_id": 31,
    }
    edited = _form(kind="llm_judge", endpoint="Strict judge", rubric_preset="tone", rubric="Is it warm?")
    assert edited.is_valid() and edited.cleaned_data["params"]["rubric"] == "Is it warm?"
    assert "judge_prompt_version_id" not in edited.cleaned_data["params"]  # the default: llm-judge on save


@pytest.mark.parametrize(
    ("kind", "fields", "problem"),
    [
        ("contains", {}, "Give the text to look for"),
        ("regex", {}, "Give the pattern."),
        ("json_schema", {}, "Give the JSON schema."),
        ("length", {"length_unit": "chars"}, "Give a minimum, a maximum or both."),
        ("similarity", {"endpoint": "Nobody"}, None),  # not one of the choices: the field refuses it
        ("llm_judge", {"endpoint": "Strict judge"}, "Choose a rubric from the library or write one."),
        ("llm_judge", {"endpoint": "Strict judge", "rubric": "x", "scale_min": "5", "scale_max": "1"},
         "The scale's top must be above its bottom."),
        ("llm_judge", {"endpoint": "Strict judge", "rubric": "x", "pass_at": "9"}, "'Passes at' must be on the scale."),
        ("llm_judge", {"rubric": "x"}, "Choose the model endpoint."),
    ],
)  # fmt: skip
def test_what_a_kind_lacks_is_named(kind, fields, problem):
    form = _form(kind=kind, name="x", **fields)
    assert not form.is_valid()
    if problem:
        assert any(problem in error for error in form.non_field_errors()), form.errors
    else:
        assert "endpoint" in form.errors


def test_the_json_box_adds_to_the_fields_and_a_row_without_kind_is_no_evaluator():
    form = _form(kind="contains", name="x", contains_value="refund", params='{"case_sensitive": true}')
    assert form.is_valid() and form.cleaned_data["params"] == {"value": "refund", "case_sensitive": True}
    assert _form(kind="contains", name="x", params='{"value": "item"}').is_valid()  # JSON alone still works
    blank = _form(kind="", name="", scale_min="1", scale_max="5", pass_at="4", length_unit="chars")
    assert blank.is_valid() and not blank.cleaned_data["kind"]
    assert not _form(kind="", name="started").is_valid()


def test_evaluator_params_ignores_an_endpoint_name_it_does_not_know():
    assert evaluator_params("llm_judge", {"endpoint": "Gone", "rubric": "r"}, endpoints=ENDPOINTS) == {"rubric": "r"}
