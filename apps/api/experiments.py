"""REST for experiments, so a CI pipeline can gate a prompt change on one: start, status and summary, cells."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import responses
from apps.api.auth import HasWriteScope
from apps.api.errors import ApiError
from apps.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictDecimalField,
    StrictIntegerField,
)
from apps.datasets.models import DatasetVersion
from apps.experiments import selectors, services
from apps.experiments.evaluators import KINDS
from apps.experiments.models import Cell, Experiment
from apps.prompts.models import PromptVersion
from apps.providers.models import ModelEndpoint


class VariantInSerializer(serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=20)
    prompt = StrictCharField(min_length=1, help_text="The prompt's name.")
    version = StrictIntegerField(required=False, min_value=1, help_text="A version number ...")
    label = StrictCharField(min_length=1, required=False, help_text="... or a label such as production or latest.")
    endpoint = StrictCharField(min_length=1, help_text="The model endpoint's name.")
    params = serializers.DictField(required=False, default=dict)


class EvaluatorInSerializer(serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=60)
    kind = serializers.ChoiceField(choices=sorted(KINDS))
    params = serializers.DictField(required=False, default=dict)


@extend_schema_field({"type": "number", "minimum": 0.0001, "maximum": 99_999_999, "nullable": True})
class BudgetField(StrictDecimalField):
    """What the experiment may spend: 0.0001 to 99,999,999 dollars, rounded to 4 decimal places."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not Decimal("0.0001") <= value <= 99_999_999:
            raise serializers.ValidationError("A budget is from 0.0001 to 99,999,999 dollars (or null for none).")
        return value


class ExperimentInSerializer(serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=120)
    dataset = StrictCharField(min_length=1, help_text="The dataset's name.")
    dataset_version = StrictIntegerField(required=False, min_value=1, help_text="Default: the newest.")
    variants = serializers.ListField(child=VariantInSerializer(), min_length=1)
    evaluators = EvaluatorInSerializer(many=True, required=False, default=list)
    repeats = StrictIntegerField(required=False, default=1, min_value=1, max_value=settings.EXPERIMENT_MAX_REPEATS)
    budget = BudgetField(
        required=False,
        allow_null=True,
        max_digits=12,
        decimal_places=4,
        rounding=ROUND_HALF_UP,
        help_text="Dollars, rounded to 4 decimal places; the experiment stops when it has spent this much.",
    )
    start = StrictBooleanField(required=False, default=True)


def _experiment(project_id: int, experiment_id: int) -> Experiment:
    if not 0 < experiment_id < 2**63:  # past a 64-bit id the database would refuse the query itself
        raise ApiError(404, "experiment_not_found", f"No experiment {experiment_id} in this project.")
    experiment = Experiment.objects.filter(pk=experiment_id, project_id=project_id).first()
    if experiment is None:
        raise ApiError(404, "experiment_not_found", f"No experiment {experiment_id} in this project.")
    return experiment


def _prompt_version(project_id: int, spec: dict) -> PromptVersion:
    versions = PromptVersion.objects.filter(prompt__project_id=project_id, prompt__name=spec["prompt"])
    if "version" in spec:
        found = versions.filter(number=spec["version"]).first()
    elif spec.get("label", "latest") == "latest":
        found = versions.order_by("-number").first()
    else:
        found = versions.filter(labels__name=spec["label"]).first()
    if found is None:
        which = f"v{spec['version']}" if "version" in spec else spec.get("label", "latest")
        raise ApiError(404, "version_not_found", f"Variant {spec['name']}: no {spec['prompt']} {which}.")
    return found


def _status(experiment: Experiment) -> dict[str, Any]:
    progress = selectors.experiment_progress(experiment=experiment)
    overall = progress.total
    summary = selectors.experiment_summary(experiment=experiment)
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "status": experiment.status,
        "status_reason": experiment.status_reason,
        "dataset": experiment.dataset_version.dataset.name,
        "dataset_version": experiment.dataset_version.number,
        "repeats": experiment.repeats,
        "started_at": experiment.started_at,
        "finished_at": experiment.finished_at,
        "cells": {
            "total": overall.total,
            "done": overall.done,
            "running": overall.running,
            "failed": overall.failed,
            "pending": overall.pending,
            "cancelled": overall.cancelled,
        },
        "cost": str(progress.cost),
        "totals": {
            "tokens_in": experiment.total_tokens_in,
            "tokens_out": experiment.total_tokens_out,
            "cost": str(experiment.total_cost),
            "errors": experiment.total_errors,
        },
        "variants": [
            {
                "name": s.name,
                "prompt": s.prompt,
                "endpoint": s.endpoint,
                "done": s.done,
                "failed": s.failed,
                "tokens_in": s.tokens_in,
                "tokens_out": s.tokens_out,
                "cost": str(s.cost),
                "latency_p50_ms": s.latency_p50,
                "latency_p95_ms": s.latency_p95,
                "evaluators": {
                    e.name: {"mean": e.mean, "pass_rate": e.pass_rate, "n": e.scored, "errors": e.errored}
                    for e in s.evaluators
                },
            }
            for s in summary
        ],
    }


STATUS = inline_serializer("ExperimentStatus", {"id": serializers.IntegerField(), "status": serializers.CharField()})


@extend_schema(
    methods=["POST"],
    operation_id="experiment_create",
    summary="Create an experiment and (by default) start it (write scope)",
    request=ExperimentInSerializer,
    responses={201: STATUS, **responses.WRITE_ERRORS},
)
@extend_schema(
    methods=["GET"],
    operation_id="experiments_list",
    summary="The project's experiments, newest first",
    responses={200: OpenApiTypes.OBJECT, **responses.AUTH},
)
@api_view(["GET", "POST"])
def experiment_list(request: Request) -> Response:
    project_id = request.auth.project_id
    if request.method == "GET":
        rows = Experiment.objects.filter(project_id=project_id).order_by("-created_at")[:100]
        return Response({"experiments": [{"id": e.pk, "name": e.name, "status": e.status} for e in rows]})
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, HasWriteScope.code, HasWriteScope.message)
    serializer = ExperimentInSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    versions = DatasetVersion.objects.filter(dataset__project_id=project_id, dataset__name=data["dataset"])
    version = (
        versions.filter(number=data["dataset_version"]).first()
        if "dataset_version" in data
        else versions.order_by("-number").first()
    )
    if version is None:
        raise ApiError(404, "dataset_not_found", f"No dataset version {data['dataset']} in this project.")
    variants = []
    for spec in data["variants"]:
        endpoint = ModelEndpoint.objects.filter(project_id=project_id, name=spec["endpoint"]).first()
        if endpoint is None:
            raise ApiError(
                404, "endpoint_not_found", f"Variant {spec['name']}: no model endpoint '{spec['endpoint']}'."
            )
        variants.append(services.VariantSpec(spec["name"], _prompt_version(project_id, spec), endpoint, spec["params"]))
    from apps.api.views import _acting_key

    api_key = _acting_key(request.auth)
    try:
        experiment = services.experiment_create(
            project=api_key.project,
            name=data["name"],
            dataset_version=version,
            variants=variants,
            evaluator_specs=[services.EvaluatorSpec(e["name"], e["kind"], e["params"]) for e in data["evaluators"]],
            repeats=data["repeats"],
            budget=Decimal(data["budget"]) if data.get("budget") is not None else None,
            actor=api_key,
        )
        if data["start"]:
            experiment = services.experiment_start(experiment=experiment, actor=api_key)
    except services.ExperimentError as exc:
        raise ApiError(400, "invalid_experiment", str(exc))
    return Response({"id": experiment.pk, "status": experiment.status}, status=201)


@extend_schema(
    operation_id="experiment_get",
    summary="Status, progress, totals and the summary per variant",
    responses={200: OpenApiTypes.OBJECT, **responses.AUTH, **responses.NOT_FOUND},
)
@api_view(["GET"])
def experiment_detail(request: Request, experiment_id: int) -> Response:
    return Response(_status(_experiment(request.auth.project_id, experiment_id)))


@extend_schema(
    operation_id="experiment_cells",
    summary="The experiment's cells with outputs and scores, 100 per page",
    parameters=[OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1})],
    responses={200: OpenApiTypes.OBJECT, **responses.READ_ERRORS},
)
@api_view(["GET"])
def experiment_cells(request: Request, experiment_id: int) -> Response:
    experiment = _experiment(request.auth.project_id, experiment_id)
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        raise ApiError(400, "invalid_page", "page must be a whole number.")
    pages = Paginator(selectors.experiment_cells_for_export(experiment=experiment), 100)
    if not 1 <= number <= max(pages.num_pages, 1):
        raise ApiError(404, "page_not_found", f"There are {pages.num_pages} pages.")
    page = pages.page(number)
    return Response(
        {
            "page": number,
            "pages": pages.num_pages,
            "count": pages.count,
            "cells": [_cell(cell) for cell in page.object_list],
        }
    )


def _cell(cell: Cell) -> dict[str, Any]:
    return {
        "row": cell.position + 1,
        "variant": cell.variant.name,
        "repeat": cell.repeat + 1,
        "status": cell.status,
        "input": cell.item.input,
        "expected": cell.item.expected,
        "output": cell.output,
        "finish_reason": cell.finish_reason,
        "tokens_in": cell.tokens_in,
        "tokens_out": cell.tokens_out,
        "cost": str(cell.cost) if cell.cost is not None else None,
        "latency_ms": cell.latency_ms,
        "attempts": cell.attempts,
        "error": {"kind": cell.error_kind, "message": cell.error_message} if cell.error_kind else None,
        "scores": {
            s.evaluator.name: {"value": s.value, "passed": s.passed, "explanation": s.explanation, "error": s.error}
            for s in cell.scores.all()
        },
    }


@extend_schema(
    operation_id="experiment_summary",
    summary="Human ratings and blind judgements: means with CIs, win rates with p-values, agreement, a verdict",
    description=(
        "Per variant `mean_rating`, `ci_low`, `ci_high`, `n`; per pair `win_rate`, `ci_low`, `ci_high`, "
        "`p_value`, `ties`, `n`; `agreement` with its `method`; and a plain-language `verdict`."
    ),
    responses={200: OpenApiTypes.OBJECT, **responses.AUTH, **responses.NOT_FOUND},
)
@api_view(["GET"])
def experiment_summary(request: Request, experiment_id: int) -> Response:
    from apps.ratings.summary import experiment_rating_summary

    experiment = _experiment(request.auth.project_id, experiment_id)
    return Response(experiment_rating_summary(experiment=experiment))


@extend_schema(
    operation_id="experiment_action",
    summary="Start, pause, resume or cancel an experiment (write scope)",
    request=None,
    parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=["start", "pause", "resume", "cancel"])],
    responses={
        200: OpenApiTypes.OBJECT,
        **responses.AUTH,
        **responses.NOT_FOUND,
        403: responses.WRITE[403],
        409: responses.WRITE[409],
    },
)
@api_view(["POST"])
def experiment_action(request: Request, experiment_id: int, action: str) -> Response:
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, HasWriteScope.code, HasWriteScope.message)
    actions = {
        "start": services.experiment_start,
        "pause": services.experiment_pause,
        "resume": services.experiment_resume,
        "cancel": services.experiment_cancel,
    }
    if action not in actions:
        raise ApiError(404, "unknown_action", f"Unknown action '{action}': use {', '.join(actions)}.")
    experiment = _experiment(request.auth.project_id, experiment_id)
    from apps.api.views import _acting_key

    try:
        actions[action](experiment=experiment, actor=_acting_key(request.auth))
    except services.ExperimentError as exc:
        raise ApiError(409, "invalid_state", str(exc))
    return Response(_status(Experiment.objects.get(pk=experiment.pk)))


COMPARISON = inline_serializer(
    "ExperimentComparison",
    {
        "variant": serializers.CharField(help_text="The candidate."),
        "against": serializers.CharField(help_text="The baseline."),
        "evaluator": serializers.CharField(),
        "wins": serializers.IntegerField(),
        "losses": serializers.IntegerField(),
        "ties": serializers.IntegerField(),
        "n": serializers.IntegerField(help_text="Rows scored for both variants."),
        "win_rate": serializers.FloatField(allow_null=True),
        "ci_low": serializers.FloatField(allow_null=True),
        "ci_high": serializers.FloatField(allow_null=True),
        "p_value": serializers.FloatField(allow_null=True),
        "candidate_mean": serializers.FloatField(allow_null=True),
        "baseline_mean": serializers.FloatField(allow_null=True),
        "verdict": serializers.CharField(),
        "method": serializers.CharField(),
    },
)


@extend_schema(
    operation_id="experiment_compare",
    summary="A candidate variant against a baseline on an evaluator's scores: win rate, interval, p-value",
    description=(
        "Row by row (repeats averaged), the candidate wins where its score is higher, loses where lower; ties count "
        "half. The win rate has a Wilson 95% interval and p is the exact sign test. This is what a CI gate checks; "
        "`/summary` has the human judgements."
    ),
    parameters=[
        OpenApiParameter("candidate", str, required=True, description="The candidate variant's name."),
        OpenApiParameter("baseline", str, required=True, description="The baseline variant's name."),
        OpenApiParameter("evaluator", str, description="The evaluator's name (default: the first)."),
    ],
    responses={200: COMPARISON, **responses.READ_ERRORS},
)
@api_view(["GET"])
def experiment_compare(request: Request, experiment_id: int) -> Response:
    from apps.ratings.score_pairs import ScorePairError, score_pair

    experiment = _experiment(request.auth.project_id, experiment_id)
    candidate, baseline = request.GET.get("candidate", ""), request.GET.get("baseline", "")
    if not candidate or not baseline:
        raise ApiError(400, "invalid_query", "Give candidate= and baseline=, the names of two variants.")
    try:
        result = score_pair(
            experiment=experiment, candidate=candidate, baseline=baseline, evaluator=request.GET.get("evaluator")
        )
    except ScorePairError as exc:
        raise ApiError(400, "invalid_comparison", str(exc))
    return Response(result)
