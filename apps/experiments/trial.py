"""Try an evaluator on a few dataset rows before starting the experiment: the first variant answers each row
(through the gateway, as a cell would) and the evaluator scores the answer. Nothing is saved."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.http import Http404

from apps.accounts.models import Project
from apps.datasets import selectors as dataset_selectors
from apps.experiments import evaluators, rubrics
from apps.prompts import sandbox
from apps.prompts.content import build_content, content_of, render_content
from apps.providers import gateway

TRY_ROWS = 3


class TrialError(Exception):
    """The try cannot start (no dataset version, no variant); the message is shown as is."""


@dataclass
class TrialRow:
    position: int
    input: Any
    expected: Any
    output: str = ""
    score: evaluators.Score | None = None
    error: str = ""

    @property
    def input_text(self) -> str:
        return json.dumps(self.input, ensure_ascii=False)


def _judge_content(project: Project, params: dict[str, Any]):
    """The judge prompt the evaluator pins, else the newest llm-judge, else the built-in one (not saved)."""
    from apps.prompts.models import PromptVersion

    version_id = params.get("judge_prompt_version_id")
    version = None
    if version_id:
        version = PromptVersion.objects.filter(pk=version_id, prompt__project=project).first()
        if version is None:
            raise TrialError("Choose a judge prompt of this project.")
    else:
        version = (
            PromptVersion.objects.filter(prompt__project=project, prompt__name=rubrics.JUDGE_PROMPT_NAME)
            .order_by("-number")
            .first()
        )
    if version is not None:
        return content_of(version)
    return build_content(kind="chat", messages=rubrics.JUDGE_MESSAGES, variable_specs=rubrics.JUDGE_VARIABLE_SPECS)


def _score(project: Project, kind: str, params: dict, output: str, row: TrialRow, judge: Any) -> evaluators.Score:
    if kind in evaluators.PURE:
        return evaluators.evaluate_pure(kind, output, row.expected, params)
    if judge is None:
        raise evaluators.EvaluatorError("choose the evaluator's model endpoint")
    if kind == "similarity":
        want = evaluators._require_expected(row.expected)
        vectors = gateway.embed(judge, [output[: evaluators.MAX_SCORED_CHARS], want[: evaluators.MAX_SCORED_CHARS]])
        return evaluators.similarity_of(vectors.vectors, params)
    messages = rubrics.judge_prompt_messages(
        _judge_content(project, params), output=output, expected=row.expected, item_input=row.input, params=params
    )
    answer = gateway.chat(judge, messages, params={"temperature": 0, "max_tokens": 200})
    return evaluators.parse_judgement(answer.output, params)


def evaluator_try(
    *,
    project: Project,
    dataset_version_id: Any,
    prompt_version_id: Any,
    endpoint_id: Any,
    variant_params: dict[str, Any],
    kind: str,
    params: dict[str, Any],
    rows: int = TRY_ROWS,
) -> list[TrialRow]:
    """The first `rows` rows of the dataset version answered by the variant and scored by the evaluator.

    Every model call goes through the gateway (slots, limits, retries, the secret guard); a row whose call or
    score fails carries the message, the others are still tried.
    """
    from apps.experiments.runner import call_params
    from apps.prompts.models import PromptVersion
    from apps.providers.models import ModelEndpoint

    if kind not in evaluators.KINDS:
        raise TrialError("Choose the evaluator's kind first.")
    try:
        version = dataset_selectors.version_get_by_id(project=project, version_id=int(dataset_version_id))
    except (TypeError, ValueError, Http404):
        raise TrialError("Choose the dataset version to try on.") from None
    prompt_version = PromptVersion.objects.filter(pk=prompt_version_id or 0, prompt__project=project).first()
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id or 0, project=project).first()
    if prompt_version is None or endpoint is None:
        raise TrialError("Fill in the first variant (a prompt version and a model endpoint) to try on.")
    judge = None
    if evaluators.KINDS[kind].needs_model:
        judge = ModelEndpoint.objects.filter(pk=params.get("endpoint_id") or 0, project=project).first()
    content = content_of(prompt_version)
    call = call_params(prompt_version.config, variant_params)
    results = []
    for position, item in dataset_selectors.version_items_page(version=version, page=1, per_page=rows):
        row = TrialRow(position=position + 1, input=item.input, expected=item.expected)
        results.append(row)
        try:
            rendered = render_content(content, item.input if isinstance(item.input, dict) else {})
            completion = gateway.generate(
                endpoint,
                messages=rendered if isinstance(rendered, list) else None,
                prompt=rendered if isinstance(rendered, str) else None,
                params=call,
            )
            row.output = completion.output
            row.score = _score(project, kind, params, completion.output, row, judge)
        except sandbox.TemplateProblem as exc:
            row.error = f"the prompt did not render for this row: {exc}"
        except evaluators.EvaluatorError as exc:
            row.error = str(exc)
        except gateway.GatewayError as exc:
            row.error = f"{exc.label}: {exc.message}"
    return results
