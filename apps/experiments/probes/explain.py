"""Which input moved one output: occlusion of each variable, and the words the output's probability hangs on.

The subject is one recorded output: an experiment's cell, or a production generation (a trace's span
that names its prompt version and carries its variables). Its prompt is rendered again and sent through
the gateway to an endpoint with the same parameters:

- **Occlusion.** Each variable in turn replaced by a neutral value ("" for text, 0 for a number, an
  empty list or object). How far each answer moved from the recorded one is a text distance
  (1 - difflib's similarity ratio) and whether the decision (first line) changed. The same request
  without any change is sent once too: its distance is the noise floor of a sampling model, so a
  variable matters only where it moves the answer more than that.
- **Token sensitivity**, where the endpoint returns log-probabilities (the local llama.cpp server and
  the simulated one do): the log-probability of the output's first token (the decision, for a
  classifier) with the inputs as they were, then with each word of the text variables removed in turn
  (at most SENSITIVITY_WORDS words, one token generated per call). The words whose removal lowers it
  most are the ones the output's probability was most sensitive to. When the first token falls out of
  the endpoint's top alternatives, its log-probability is at most the last alternative's, shown as such.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from apps.experiments.probes.bias import label_of

SENSITIVITY_WORDS = 30
TOP_LOGPROBS = 20  # the most OpenAI-compatible servers return
_WORD = re.compile(r"\S+")


class ExplainError(Exception):
    """This output cannot be explained (no prompt version, no variables, not finished); the message says why."""


@dataclass
class Subject:
    """What is explained: a prompt's content, the inputs it was rendered with, and the output it gave."""

    version: Any  # the PromptVersion
    content: Any
    inputs: dict[str, Any]
    endpoint: Any
    params: dict[str, Any]
    output: str
    names: list[str] = field(default_factory=list)  # the variables to occlude, in the prompt's order


def _subject(version, inputs: dict[str, Any], endpoint, params: dict[str, Any], output: str) -> Subject:
    from apps.prompts.content import content_of

    names = [n for n in version.variable_names if n in inputs]
    return Subject(version, content_of(version), inputs, endpoint, params, output, names)


@dataclass
class Occlusion:
    variable: str  # "" for the unchanged re-run
    neutral: Any
    output: str
    distance: float
    decision_changed: bool
    error: str = ""


@dataclass
class WordSensitivity:
    variable: str
    position: int  # the word's index among the variable's words
    word: str
    logprob: float
    delta: float  # the baseline's log-probability minus this one: > 0 when the word supported the token
    below: bool = False  # the token fell out of the top alternatives: logprob is an upper bound


def subject_of_cell(cell) -> Subject:
    from apps.experiments.models import CellStatus
    from apps.experiments.runner import call_params

    if cell.status != CellStatus.DONE:
        raise ExplainError("Only a finished output can be explained.")
    variant = cell.variant
    params = call_params(variant.prompt_version.config, variant.params)
    return _subject(variant.prompt_version, dict(cell.item.input or {}), variant.endpoint, params, cell.output)


def subject_of_span(span, endpoint) -> Subject:
    """A production generation (a traces Span): its prompt version's content with the variables the app sent."""
    from apps.experiments.runner import call_params

    version = span.prompt_version
    if version is None:
        raise ExplainError("This generation names no prompt version of the studio, so there is no template to re-run.")
    subject = _subject(version, dict(span.variables or {}), endpoint, call_params(version.config, {}),
                       span.output_text or "")  # fmt: skip
    if not subject.names:
        raise ExplainError(
            "This generation carries none of its prompt's variables (the app did not send them), so nothing "
            "can be occluded."
        )
    return subject


def subject_of_explanation(explanation) -> Subject:
    """What a stored Explanation explains, as it was when it was asked for."""
    return _subject(explanation.prompt_version, dict(explanation.inputs), explanation.endpoint,
                    dict(explanation.params), explanation.output)  # fmt: skip


def neutral_value(value: Any) -> Any:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return ""


def distance(a: str, b: str) -> float:
    return round(1 - difflib.SequenceMatcher(None, a or "", b or "").ratio(), 3)


def _generate(subject: Subject, values: dict[str, Any], extra: dict[str, Any] | None = None):
    from apps.prompts.content import render_content
    from apps.providers import gateway

    rendered = render_content(subject.content, values)
    return gateway.generate(
        subject.endpoint,
        messages=rendered if isinstance(rendered, list) else None,
        prompt=rendered if isinstance(rendered, str) else None,
        params={**subject.params, **(extra or {})},
    )


def _problem(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def occlusion(subject: Subject, tick: Callable[[], None] = lambda: None) -> list[Occlusion]:
    """The unchanged re-run first, then each variable occluded, most moving first (N+1 model calls)."""
    from apps.prompts.sandbox import TemplateProblem
    from apps.providers import gateway

    def run(variable: str, values: dict[str, Any]) -> Occlusion:
        neutral = values.get(variable) if variable else None
        try:
            output = _generate(subject, values).output
        except (TemplateProblem, gateway.GatewayError) as exc:
            return Occlusion(variable, neutral, "", 0.0, False, _problem(exc))
        finally:
            tick()
        return Occlusion(variable, neutral, output, distance(subject.output, output),
                         label_of(subject.output) != label_of(output))  # fmt: skip

    baseline = run("", subject.inputs)
    results = [run(name, {**subject.inputs, name: neutral_value(subject.inputs[name])}) for name in subject.names]
    results.sort(key=lambda r: (r.decision_changed, r.distance), reverse=True)
    return [baseline, *results]


def _all_word_slots(subject: Subject) -> list[tuple[str, int, re.Match]]:
    """(variable, index, match) of each word of the prompt's text variables."""
    return [
        (name, index, match)
        for name in subject.names
        if isinstance(subject.inputs[name], str)
        for index, match in enumerate(_WORD.finditer(subject.inputs[name]))
    ]


def word_slots(subject: Subject) -> list[tuple[str, int, re.Match]]:
    """The words token sensitivity removes in turn: the first SENSITIVITY_WORDS of _all_word_slots."""
    return _all_word_slots(subject)[:SENSITIVITY_WORDS]


def _first_token_logprob(completion, token: str) -> tuple[float, bool] | None:
    """The log-probability of `token` as the first output token, and whether it is only an upper bound."""
    if not completion.logprobs:
        return None
    first = completion.logprobs[0]
    if first["token"] == token:
        return first["logprob"], False
    for alternative, value in first["top"]:
        if alternative == token:
            return value, False
    floor = min([value for _, value in first["top"]] or [first["logprob"]])
    return floor, True


def token_sensitivity(subject: Subject, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The words of the input the output's first token was most sensitive to (1 + one call per word).

    Returns {"available": False, "note": why} when the endpoint returns no log-probabilities.
    """
    from apps.prompts.sandbox import TemplateProblem
    from apps.providers import gateway

    extra = {"logprobs": True, "top_logprobs": TOP_LOGPROBS, "max_tokens": 1, "temperature": 0}
    if getattr(subject.endpoint, "mode", "chat") == "completion":
        extra = {"logprobs": TOP_LOGPROBS, "max_tokens": 1, "temperature": 0}
    slots = word_slots(subject)
    try:
        baseline = _generate(subject, subject.inputs, extra)
    except (TemplateProblem, gateway.GatewayError) as exc:
        return {"available": False, "note": f"The first call failed: {_problem(exc)}", "skipped": len(slots)}
    finally:
        tick()
    if not baseline.logprobs:
        return {"available": False, "note": "This endpoint returns no log-probabilities.", "skipped": len(slots)}
    token = baseline.logprobs[0]["token"]
    base = baseline.logprobs[0]["logprob"]
    words: list[WordSensitivity] = []
    errors = 0
    for name, index, match in slots:
        value = subject.inputs[name]
        values = {**subject.inputs, name: (value[: match.start()] + value[match.end() :]).strip()}
        try:
            found = _first_token_logprob(_generate(subject, values, extra), token)
        except (TemplateProblem, gateway.GatewayError):
            errors += 1
            continue
        finally:
            tick()
        if found is None:
            errors += 1
            continue
        logprob, below = found
        words.append(WordSensitivity(name, index, match.group(), round(logprob, 4), round(base - logprob, 4), below))
    words.sort(key=lambda w: w.delta, reverse=True)
    return {
        "available": True,
        "token": token,
        "logprob": round(base, 4),
        "words": [asdict(w) for w in words],
        "errors": errors,
        "truncated": len(_all_word_slots(subject)) > SENSITIVITY_WORDS,
    }


def calls_needed(subject: Subject) -> int:
    """Model calls of a whole explanation: occlusion (1 + variables) and sensitivity (1 + words)."""
    return 1 + len(subject.names) + 1 + len(word_slots(subject))


def explain(subject: Subject, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Occlusion and token sensitivity, as stored in Explanation.result."""
    rows = occlusion(subject, tick)
    return {
        "output": subject.output,
        "baseline": asdict(rows[0]),
        "occlusion": [asdict(r) for r in rows[1:]],
        "sensitivity": token_sensitivity(subject, tick),
    }
