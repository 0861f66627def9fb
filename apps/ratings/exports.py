"""Exports of ratings and judgements: CSV rows, a preference dataset (prompt, chosen, rejected), fine-tuning JSONL."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from apps.core.spreadsheet import safe_cell
from apps.experiments.models import Cell, Experiment
from apps.ratings.models import Choice, PairwiseJudgement, Rating


def _prompt_of(cell: Cell) -> Any:
    """The prompt the model saw: the rendered messages when stored, else the item's input variables."""
    request = cell.request or {}
    if request.get("messages"):
        return request["messages"]
    if request.get("prompt"):
        return request["prompt"]
    return cell.item.input


def rating_rows(*, experiment: Experiment) -> Iterator[list[str]]:
    yield ["row", "variant", "repeat", "rater", "score", "thumb", "labels", "criteria", "comment", "rated_at", "output"]
    ratings = (
        Rating.objects.filter(cell__experiment=experiment)
        .select_related("cell__variant", "rater")
        .order_by("cell__position", "cell__variant__name", "cell__repeat", "rater__username")
    )
    for r in ratings.iterator(chunk_size=500):
        yield [safe_cell(v) for v in (
            r.cell.position + 1, r.cell.variant.name, r.cell.repeat + 1, r.rater.get_username(), r.score,
            r.values.get("thumb"), ";".join(r.values.get("labels", [])), r.values.get("criteria"), r.comment,
            r.updated_at.isoformat(), r.cell.output,
        )]  # fmt: skip


def judgement_rows(*, experiment: Experiment) -> Iterator[list[str]]:
    yield ["row", "rater", "left_variant", "right_variant", "choice", "winner", "reason", "judged_at"]
    judgements = (
        PairwiseJudgement.objects.filter(experiment=experiment)
        .select_related("left_cell__variant", "right_cell__variant", "rater")
        .order_by("position", "created_at")
    )
    for j in judgements.iterator(chunk_size=500):
        left, right = j.left_cell.variant.name, j.right_cell.variant.name
        winner = {Choice.LEFT: left, Choice.RIGHT: right}.get(j.choice, "tie")
        yield [safe_cell(v) for v in (
            j.position + 1, j.rater.get_username(), left, right, j.choice, winner, j.reason, j.created_at.isoformat()
        )]  # fmt: skip


def preference_records(*, experiment: Experiment) -> Iterator[dict[str, Any]]:
    """One record per decisive judgement: {prompt, chosen, rejected}; ties say nothing about preference."""
    judgements = (
        PairwiseJudgement.objects.filter(experiment=experiment)
        .exclude(choice=Choice.TIE)
        .select_related("left_cell__item", "right_cell", "left_cell__variant", "right_cell__variant")
        .order_by("position", "created_at")
    )
    for j in judgements.iterator(chunk_size=500):
        chosen, rejected = (j.left_cell, j.right_cell) if j.choice == Choice.LEFT else (j.right_cell, j.left_cell)
        yield {
            "prompt": _prompt_of(j.left_cell),
            "chosen": chosen.output,
            "rejected": rejected.output,
            "metadata": {
                "row": j.position + 1,
                "chosen_variant": chosen.variant.name,
                "rejected_variant": rejected.variant.name,
            },
        }


def finetune_records(*, experiment: Experiment, min_score: float | None = None) -> Iterator[dict[str, Any]]:
    """Per item, the output people rated best (mean score, at least the scale's upper quarter) as a chat example."""
    from apps.ratings.services import form_definition

    scale = form_definition(experiment).get("scale") or {"min": 1, "max": 5}
    threshold = min_score if min_score is not None else scale["min"] + 0.75 * (scale["max"] - scale["min"])
    scores: dict[int, list[int]] = defaultdict(list)
    for cell_id, score in Rating.objects.filter(cell__experiment=experiment, score__isnull=False).values_list(
        "cell_id", "score"
    ):
        scores[cell_id].append(score)
    best: dict[int, tuple[float, int]] = {}
    for cell_id, position in Cell.objects.filter(pk__in=list(scores)).values_list("pk", "position"):
        mean = sum(scores[cell_id]) / len(scores[cell_id])
        if mean >= threshold and (position not in best or mean > best[position][0]):
            best[position] = (mean, cell_id)
    cells = Cell.objects.filter(pk__in=[c for _, c in best.values()]).select_related("item").order_by("position")
    for cell in cells:
        prompt = _prompt_of(cell)
        messages = (
            prompt
            if isinstance(prompt, list)
            else [
                {
                    "role": "user",
                    "content": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
                }
            ]
        )
        yield {"messages": [*messages, {"role": "assistant", "content": cell.output}]}
