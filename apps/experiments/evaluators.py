"""Automatic evaluators: each scores one output and explains the score.

A score is a number in [0, 1] (1 is best), whether it passes, and a short
explanation. An evaluator that cannot run (a bad regex, a judge that answered
nonsense) raises EvaluatorError: the score is stored as errored, the cell is not.
Pure evaluators live here; the ones that call a model (semantic similarity,
LLM-as-judge) get the gateway call passed in, so this module imports no
provider code and stays testable on its own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MAX_SCORED_CHARS = 200_000
REGEX_TIMEOUT_SECONDS = 0.5


class EvaluatorError(Exception):
    """The evaluator could not score this output; the message says why."""


@dataclass(frozen=True)
class Score:
    value: float
    passed: bool
    explanation: str


@dataclass(frozen=True)
class Kind:
    key: str
    title: str
    needs_expected: bool = False
    needs_model: bool = False
    params_help: str = ""


KINDS: dict[str, Kind] = {
    k.key: k
    for k in [
        Kind("exact_match", "Exact match", needs_expected=True, params_help='{"case_sensitive": false}'),
        Kind("contains", "Contains", params_help='{"value": "refund"} (or "expected": true)'),
        Kind("not_contains", "Does not contain", params_help='{"value": "As an AI"}'),
        Kind("regex", "Matches a regex", params_help='{"pattern": "^\\\\d+$"}'),
        Kind("valid_json", "Valid JSON"),
        Kind("json_schema", "Matches a JSON schema", params_help='{"schema": {"type": "object"}}'),
        Kind("length", "Length bounds", params_help='{"min": 10, "max": 500, "unit": "chars"|"words"}'),
        Kind("numeric", "Numeric closeness", needs_expected=True, params_help='{"tolerance": 0.01, "relative": false}'),
        Kind(
            "similarity",
            "Semantic similarity",
            needs_expected=True,
            needs_model=True,
            params_help='{"endpoint_id": 1, "threshold": 0.8}',
        ),
        Kind(
            "llm_judge",
            "LLM as judge",
            needs_model=True,
            params_help='{"endpoint_id": 1, "rubric": "...", "scale_min": 1, "scale_max": 5, "pass_at": 4}',
        ),
    ]
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _require_expected(expected: Any) -> str:
    if expected is None or expected == "":
        raise EvaluatorError("this item has no expected output to compare with")
    return _text(expected)


def exact_match(output: str, expected: Any, params: dict) -> Score:
    want = _require_expected(expected)
    got = output
    if params.get("strip", True):
        want, got = want.strip(), got.strip()
    if not params.get("case_sensitive", False):
        want, got = want.casefold(), got.casefold()
    passed = want == got
    return Score(
        1.0 if passed else 0.0, passed, "matches the expected output" if passed else "differs from the expected output"
    )


def _needle(expected: Any, params: dict) -> str:
    if params.get("expected"):
        return _require_expected(expected)
    value = params.get("value")
    if not isinstance(value, str) or not value:
        raise EvaluatorError("set 'value' to the text to look for (or 'expected': true)")
    return value


def contains(output: str, expected: Any, params: dict) -> Score:
    needle = _needle(expected, params)
    haystack = output
    if not params.get("case_sensitive", False):
        needle, haystack = needle.casefold(), haystack.casefold()
    passed = needle in haystack
    return Score(1.0 if passed else 0.0, passed, f"{'contains' if passed else 'lacks'} '{_needle(expected, params)}'")


def not_contains(output: str, expected: Any, params: dict) -> Score:
    found = contains(output, expected, params)
    return Score(1.0 - found.value, not found.passed, found.explanation.replace("contains", "wrongly contains"))


def regex_match(output: str, expected: Any, params: dict) -> Score:
    import regex

    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern or len(pattern) > 1000:
        raise EvaluatorError("set 'pattern' to a regular expression of at most 1000 characters")
    flags = regex.IGNORECASE if params.get("ignore_case") else 0
    try:
        compiled = regex.compile(pattern, flags)
    except regex.error as exc:
        raise EvaluatorError(f"the regex does not compile: {exc}") from None
    try:
        match = compiled.search(output, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        raise EvaluatorError("the regex took too long on this output (catastrophic backtracking?)") from None
    passed = match is not None
    return Score(1.0 if passed else 0.0, passed, f"matches /{pattern}/" if passed else f"no match for /{pattern}/")


def _parse_json(output: str) -> Any:
    text = output.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, flags=re.S)
    if fenced:
        text = fenced.group(1)
    return json.loads(text)


def valid_json(output: str, expected: Any, params: dict) -> Score:
    try:
        _parse_json(output)
    except json.JSONDecodeError as exc:
        return Score(0.0, False, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    return Score(1.0, True, "valid JSON")


def json_schema(output: str, expected: Any, params: dict) -> Score:
    import jsonschema

    schema = params.get("schema")
    if not isinstance(schema, dict):
        raise EvaluatorError("set 'schema' to a JSON schema object")
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise EvaluatorError(f"the schema is invalid: {exc.message}") from None
    try:
        document = _parse_json(output)
    except json.JSONDecodeError as exc:
        return Score(0.0, False, f"not JSON: {exc.msg}")
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    if not errors:
        return Score(1.0, True, "matches the schema")
    where = "/".join(str(p) for p in errors[0].path) or "(root)"
    return Score(0.0, False, f"{len(errors)} schema error(s); first at {where}: {errors[0].message}"[:500])


def length_bounds(output: str, expected: Any, params: dict) -> Score:
    unit = params.get("unit", "chars")
    if unit not in ("chars", "words"):
        raise EvaluatorError("unit must be chars or words")
    size = len(output) if unit == "chars" else len(output.split())
    low, high = params.get("min"), params.get("max")
    if low is None and high is None:
        raise EvaluatorError("set 'min', 'max' or both")
    passed = (low is None or size >= low) and (high is None or size <= high)
    bounds = f"{low if low is not None else 0}..{high if high is not None else '∞'}"
    return Score(1.0 if passed else 0.0, passed, f"{size} {unit} (bounds {bounds})")


_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _first_number(text: str) -> float | None:
    match = _NUMBER.search(text.replace(",", "") if text.count(",") > 1 else text)
    if not match:
        return None
    try:
        return float(match.group(0).replace(",", "."))
    except ValueError:
        return None


def numeric_closeness(output: str, expected: Any, params: dict) -> Score:
    want = expected if isinstance(expected, int | float) else _first_number(_require_expected(expected))
    if want is None:
        raise EvaluatorError("the expected output holds no number")
    got = _first_number(output)
    if got is None:
        return Score(0.0, False, "the output holds no number")
    tolerance = float(params.get("tolerance", 0.0))
    error = abs(got - want)
    if params.get("relative"):
        error = error / abs(want) if want else (0.0 if got == 0 else math.inf)
    passed = error <= tolerance
    value = 1.0 if passed else max(0.0, 1.0 - error / (tolerance * 10 if tolerance else max(abs(want), 1.0)))
    return Score(
        round(value, 4), passed, f"got {got:g}, expected {want:g} (error {error:.4g}, tolerance {tolerance:g})"
    )


PURE: dict[str, Callable[[str, Any, dict], Score]] = {
    "exact_match": exact_match,
    "contains": contains,
    "not_contains": not_contains,
    "regex": regex_match,
    "valid_json": valid_json,
    "json_schema": json_schema,
    "length": length_bounds,
    "numeric": numeric_closeness,
}


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def similarity(
    output: str, expected: Any, params: dict, *, embed: Callable[[list[str]], Awaitable[list[list[float]]]]
) -> Score:
    want = _require_expected(expected)
    vectors = await embed([output[:MAX_SCORED_CHARS], want[:MAX_SCORED_CHARS]])
    return similarity_of(vectors, params)


def similarity_of(vectors: list[list[float]], params: dict) -> Score:
    """The similarity score of the output's and the expected output's embeddings (in that order)."""
    threshold = float(params.get("threshold", 0.8))
    if len(vectors) != 2:
        raise EvaluatorError("the embedding model returned the wrong number of vectors")
    value = max(0.0, min(1.0, cosine(vectors[0], vectors[1])))
    return Score(round(value, 4), value >= threshold, f"cosine similarity {value:.3f} (threshold {threshold:g})")


JUDGE_SYSTEM = (
    "You grade the output of an AI system against a rubric. Answer with JSON only: "
    '{{"score": <integer from {low} to {high}>, "reason": "<one sentence>"}}.'
)
JUDGE_USER = "Rubric:\n{rubric}\n\nInput:\n{input}\n\n{expected_part}Output to grade:\n{output}"


def judge_messages(output: str, expected: Any, item_input: dict, params: dict) -> list[dict[str, str]]:
    rubric = params.get("rubric")
    if not isinstance(rubric, str) or not rubric.strip():
        raise EvaluatorError("set 'rubric' to what the judge should look for")
    low, high = int(params.get("scale_min", 1)), int(params.get("scale_max", 5))
    expected_part = f"Reference answer:\n{_text(expected)}\n\n" if expected not in (None, "") else ""
    return [
        {"role": "system", "content": JUDGE_SYSTEM.format(low=low, high=high)},
        {
            "role": "user",
            "content": JUDGE_USER.format(
                rubric=rubric.strip(),
                input=json.dumps(item_input, ensure_ascii=False)[:20_000],
                expected_part=expected_part,
                output=output[:50_000],
            ),
        },
    ]


def parse_judgement(answer: str, params: dict) -> Score:
    low, high = int(params.get("scale_min", 1)), int(params.get("scale_max", 5))
    if high <= low:
        raise EvaluatorError("scale_max must be above scale_min")
    reason = ""
    try:
        data = _parse_json(answer)
        raw, reason = data["score"], str(data.get("reason", ""))
    except (json.JSONDecodeError, KeyError, TypeError):
        found = re.search(r"\b(\d+(?:\.\d+)?)\b", answer)
        if not found:
            raise EvaluatorError(f"the judge gave no score: {answer[:200]!r}") from None
        raw = found.group(1)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise EvaluatorError(f"the judge's score is not a number: {raw!r}") from None
    if not low <= number <= high:
        raise EvaluatorError(f"the judge's score {number:g} is outside {low}..{high}")
    pass_at = float(params.get("pass_at", (low + high) / 2))
    value = (number - low) / (high - low)
    return Score(round(value, 4), number >= pass_at, f"judge: {number:g}/{high} — {reason}"[:500])


def evaluate_pure(kind: str, output: str, expected: Any, params: dict) -> Score:
    if kind not in PURE:
        raise EvaluatorError(f"unknown evaluator '{kind}'")
    return PURE[kind](output[:MAX_SCORED_CHARS], expected, params or {})
