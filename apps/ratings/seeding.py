"""Write a finished experiment straight into the tables, without calling a model.

The demo (`seed_demo`) and the tests use it: cells get deterministic outputs,
tokens, cost and latency, and scores are written as an evaluator would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.datasets import selectors as dataset_selectors
from apps.experiments import services as experiment_services
from apps.experiments.models import Cell, CellStatus, Experiment, ExperimentStatus, Score


@dataclass
class SeedVariant:
    name: str
    prompt_version: Any
    endpoint: Any


OutputFn = Callable[[str, int, int, Any], str]
ScoreFn = Callable[[str, str, int, str, Any], tuple[float, bool, str]]


def _cost(endpoint, tokens_in: int, tokens_out: int) -> Decimal:
    """What the endpoint's own prices make of the tokens, as the gateway would (a $0 local model costs
    nothing); an endpoint without prices gets an illustrative $1 / $3 per million tokens."""
    if endpoint.price_input_per_mtok is None and endpoint.price_output_per_mtok is None:
        return Decimal(tokens_in + 3 * tokens_out) / Decimal(1_000_000)
    price_in = Decimal(endpoint.price_input_per_mtok or 0)
    price_out = Decimal(endpoint.price_output_per_mtok or 0)
    return (tokens_in * price_in + tokens_out * price_out) / Decimal(1_000_000)


@transaction.atomic
def finished_experiment(
    *,
    project,
    actor,
    name: str,
    dataset_version,
    variants: list[SeedVariant],
    output: OutputFn,
    evaluators: list[experiment_services.EvaluatorSpec] | None = None,
    score: ScoreFn | None = None,
    repeats: int = 1,
    failed: Callable[[str, int, int], bool] | None = None,
) -> Experiment:
    """`output(variant, position, repeat, item)` writes each cell; `score(evaluator, variant, position, output, item)`
    returns (value, passed, explanation) for each evaluator; `failed(variant, position, repeat)` marks failed cells."""
    experiment = experiment_services.experiment_create(
        project=project,
        name=name,
        dataset_version=dataset_version,
        variants=[experiment_services.VariantSpec(v.name, v.prompt_version, v.endpoint) for v in variants],
        evaluator_specs=evaluators or [],
        repeats=repeats,
        actor=actor,
    )
    now = timezone.now()
    by_name = {v.name: v for v in experiment.variants.select_related("endpoint")}
    cells = []
    for position, item in dataset_selectors.version_items_iter(version=dataset_version):
        for variant_name, variant in by_name.items():
            for repeat in range(repeats):
                if failed and failed(variant_name, position, repeat):
                    cells.append(
                        Cell(
                            experiment=experiment, variant=variant, item=item, position=position, repeat=repeat,
                            status=CellStatus.FAILED, error_kind="timeout", error_message="The model did not answer.",
                            attempts=1, started_at=now, finished_at=now,
                        )
                    )  # fmt: skip
                    continue
                text = output(variant_name, position, repeat, item)
                tokens_in = 40 + position % 7
                tokens_out = max(1, len(text.split()))
                cells.append(
                    Cell(
                        experiment=experiment, variant=variant, item=item, position=position, repeat=repeat,
                        status=CellStatus.DONE, output=text, finish_reason="stop", tokens_in=tokens_in,
                        tokens_out=tokens_out, cost=_cost(variant.endpoint, tokens_in, tokens_out),
                        latency_ms=200 + 13 * tokens_out + (position * 37) % 90, attempts=1,
                        request={"messages": [{"role": "user", "content": str(item.input)}]},
                        started_at=now, finished_at=now,
                    )
                )  # fmt: skip
    cells = Cell.objects.bulk_create(cells)
    configs = list(experiment.evaluators.all())
    if score and configs:
        scores = []
        for cell in cells:
            if cell.status != CellStatus.DONE:
                continue
            for config in configs:
                value, passed, explanation = score(
                    config.name, cell.variant.name, cell.position, cell.output, cell.item
                )
                scores.append(Score(cell=cell, evaluator=config, value=value, passed=passed, explanation=explanation))
        Score.objects.bulk_create(scores)
    done = [c for c in cells if c.status == CellStatus.DONE]
    experiment.status = ExperimentStatus.FINISHED
    experiment.started_at = experiment.finished_at = now
    experiment.total_tokens_in = sum(c.tokens_in or 0 for c in done)
    experiment.total_tokens_out = sum(c.tokens_out or 0 for c in done)
    experiment.total_cost = sum((c.cost for c in done), Decimal(0))
    experiment.total_errors = len(cells) - len(done)
    experiment.save()
    return experiment
