"""REST of canary releases (apps/rollouts): list, start, and promote / roll back / pause / resume a canary."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import responses
from apps.api import serializers as s
from apps.api.auth import HasWriteScope
from apps.api.errors import ApiError
from apps.api.views import _acting_key, _check_label, _check_name, _validated, prompt_version_of
from apps.prompts import services as prompt_services
from apps.prompts.models import NAME_PATTERN
from apps.rollouts import selectors, services

ACTIONS = ("promote", "rollback", "pause", "resume")


@extend_schema(
    methods=["GET"],
    operation_id="canaries_list",
    summary="The project's canaries, newest first (active ones and finished ones)",
    parameters=[OpenApiParameter("prompt", str, description="Only this prompt's canaries.", pattern=NAME_PATTERN)],
    responses={200: s.CanaryListSerializer, **responses.READ_ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="canary_start",
    summary="Start a watched canary of a version on a label (write scope)",
    description=(
        "Splits the label between its version and `version` at the first step. On a protected label the "
        "version needs the same approved review as a full release (403 review_required otherwise). The watcher "
        "rolls it back on harm and promotes it step by step."
    ),
    request=s.CanaryStartSerializer,
    responses={201: s.CanarySerializer, **responses.WRITE_ERRORS},
)
@api_view(["GET", "POST"])
def canaries(request: Request) -> Response:
    project_id = request.auth.project_id
    if request.method == "GET":
        found = selectors.rollouts_of(project_id=project_id).prefetch_related("events")
        if "prompt" in request.query_params:
            found = found.filter(prompt__name=_check_name(request.query_params["prompt"]))
        return Response({"canaries": [selectors.rollout_document(r) for r in found[:100]]})
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, "read_only_key", "This key can only read; starting a canary needs a write key.")
    data = _validated(s.CanaryStartSerializer, request.data)
    api_key = _acting_key(request.auth)
    name, label = _check_name(data["prompt"]), _check_label(data["label"])
    prompt, version = prompt_version_of(api_key, name, data["version"])
    options = {k: data[k] for k in ("steps", "min_volume", "min_minutes", "guardrails", "alpha") if k in data}
    try:
        rollout = services.rollout_start(
            prompt=prompt, label_name=label, canary_version=version, actor=api_key, **options
        )
    except prompt_services.LabelMoveRefused as exc:
        raise ApiError(403, exc.code, str(exc), label=label) from None
    except services.InvalidPlan as exc:
        raise ApiError(400, "invalid_plan", str(exc)) from None
    except (services.RolloutError, prompt_services.PromptError) as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return Response(selectors.rollout_document(rollout), status=201)


@extend_schema(
    operation_id="canary_action",
    summary="Promote to the next step, roll back, pause or resume a canary (write scope)",
    parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(ACTIONS))],
    request=None,
    responses={200: s.CanarySerializer, **responses.WRITE_ERRORS},
)
@api_view(["POST"])
@permission_classes([HasWriteScope])
def canary_action(request: Request, canary_id: int, action: str) -> Response:
    if action not in ACTIONS:
        raise ApiError(404, "not_found", f"No action '{action[:50]}': one of {', '.join(ACTIONS)}.")
    api_key = _acting_key(request.auth)
    if not 0 < canary_id < 2**63:  # past a 64-bit id the database would refuse the query itself
        raise ApiError(404, "canary_not_found", f"No canary {canary_id} in this project.")
    rollout = selectors.rollout_get(project_id=request.auth.project_id, rollout_id=canary_id)
    if rollout is None:
        raise ApiError(404, "canary_not_found", f"No canary {canary_id} in this project.")
    try:
        if action == "promote":
            services.rollout_promote(rollout_id=rollout.pk, actor=api_key, reason="promoted through the API")
        elif action == "rollback":
            services.rollout_rollback(rollout_id=rollout.pk, actor=api_key, reason="rolled back through the API")
        else:
            services.rollout_pause(rollout_id=rollout.pk, actor=api_key, pause=action == "pause")
    except prompt_services.LabelMoveRefused as exc:
        raise ApiError(403, exc.code, str(exc)) from None
    except (services.RolloutError, prompt_services.PromptError) as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return Response(
        selectors.rollout_document(selectors.rollout_get(project_id=rollout.project_id, rollout_id=rollout.pk))
    )
