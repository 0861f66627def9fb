import asyncio
import concurrent.futures

import pytest

from apps.experiments import evaluators as ev
from apps.experiments.evaluators import EvaluatorError


@pytest.mark.parametrize(
    "kind,output,expected,params,passed",
    [
        ("exact_match", " Paris ", "paris", {}, True),
        ("exact_match", "Paris", "paris", {"case_sensitive": True}, False),
        ("contains", "We will refund you", None, {"value": "REFUND"}, True),
        ("contains", "Answer: 42", "42", {"expected": True}, True),
        ("not_contains", "As an AI model, I", None, {"value": "as an ai"}, False),
        ("not_contains", "Sure, here it is", None, {"value": "as an ai"}, True),
        ("regex", "Order #1234 shipped", None, {"pattern": r"#\d{4}\b"}, True),
        ("regex", "no digits", None, {"pattern": r"\d"}, False),
        ("valid_json", '```json\n{"a": 1}\n```', None, {}, True),
        ("valid_json", "{a: 1}", None, {}, False),
        ("json_schema", '{"category": "bug"}', None, {"schema": {"type": "object", "required": ["category"]}}, True),
        ("json_schema", '{"cat": "bug"}', None, {"schema": {"type": "object", "required": ["category"]}}, False),
        ("length", "one two three", None, {"min": 2, "max": 3, "unit": "words"}, True),
        ("length", "x" * 20, None, {"max": 10}, False),
        ("numeric", "The total is 41.99 dollars", "42", {"tolerance": 0.05}, True),
        ("numeric", "The total is 40", 42, {"tolerance": 0.01, "relative": True}, False),
    ],
)
def test_it_scores_outputs(kind, output, expected, params, passed):
    score = ev.evaluate_pure(kind, output, expected, params)
    assert score.passed is passed
    assert score.value == (1.0 if passed else score.value)
    assert 0.0 <= score.value <= 1.0
    assert score.explanation


@pytest.mark.parametrize(
    "kind,params,expected,message",
    [
        ("exact_match", {}, None, "no expected output"),
        ("regex", {"pattern": "("}, None, "does not compile"),
        ("json_schema", {"schema": {"type": "nope"}}, None, "schema is invalid"),
        ("contains", {}, None, "set 'value'"),
        ("length", {}, None, "set 'min'"),
        ("unknown", {}, None, "unknown evaluator"),
    ],
)
def test_it_errors_instead_of_scoring_when_it_cannot_run(kind, params, expected, message):
    with pytest.raises(EvaluatorError, match=message):
        ev.evaluate_pure(kind, "output", expected, params)


def test_a_catastrophic_regex_is_stopped():
    with pytest.raises(EvaluatorError, match="too long"):
        ev.evaluate_pure("regex", "a" * 60 + "!", None, {"pattern": r"^(a|aa)+$"})


def test_the_judge_answer_is_parsed_and_scaled():
    score = ev.parse_judgement('{"score": 4, "reason": "mostly right"}', {"scale_min": 1, "scale_max": 5, "pass_at": 4})
    assert (score.value, score.passed) == (0.75, True)
    assert "mostly right" in score.explanation
    assert ev.parse_judgement("I would give it a 2.", {"scale_min": 1, "scale_max": 5}).passed is False
    with pytest.raises(EvaluatorError, match="outside"):
        ev.parse_judgement('{"score": 9}', {"scale_min": 1, "scale_max": 5})
    with pytest.raises(EvaluatorError, match="no score"):
        ev.parse_judgement("excellent!", {})


def test_the_judge_sees_rubric_input_reference_and_output():
    messages = ev.judge_messages("out", "ref", {"q": "why"}, {"rubric": "Is it polite?"})
    text = messages[1]["content"]
    assert "Is it polite?" in text and '"q": "why"' in text and "ref" in text and "out" in text
    assert "from 1 to 5" in messages[0]["content"]


def test_similarity_uses_the_embeddings_it_is_given():
    async def embed(texts):
        return [[1.0, 0.0], [0.6, 0.8]]

    # In a thread of its own: a browser test may have left an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        score = pool.submit(asyncio.run, ev.similarity("a", "b", {"threshold": 0.5}, embed=embed)).result()
    assert (score.value, score.passed) == (0.6, True)
