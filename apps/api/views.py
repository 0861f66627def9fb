"""The REST surface for apps, under /api/v1/. Every request carries `Authorization: Bearer <key>`.

A key belongs to one project; every lookup is scoped to it, so another
project's prompts answer 404 exactly like prompts that do not exist.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import selectors as account_selectors
from apps.accounts.models import ApiKey
from apps.api import cache, responses, selectors
from apps.api import serializers as s
from apps.api.auth import HasWriteScope
from apps.api.cache import KeyInfo
from apps.api.errors import ApiError
from apps.api.lean import LeanGetView
from apps.prompts import selectors as prompt_selectors
from apps.prompts import services as prompt_services
from apps.prompts.content import ContentProblem, build_content, content_of, render_content
from apps.prompts.models import NAME_PATTERN, PromptVersion
from apps.prompts.sandbox import TemplateProblem

DEFAULT_LABEL = "production"
LABEL_PATTERN = NAME_PATTERN.replace("{0,99}", "{0,49}")
# A version number (1 and up) or a label name.
VERSION_REF = "^(?!0+$)(?:[0-9]{1,9}|" + LABEL_PATTERN[1:-1] + ")$"
_NAME = re.compile(NAME_PATTERN)
_MAX_VERSION = 2**31 - 1

ERRORS = responses.READ_ERRORS
WRITE_ERRORS = responses.WRITE_ERRORS
SELECTOR_PARAMETERS = [
    OpenApiParameter(
        "label", str, description="A label such as production (the default) or latest.", pattern=LABEL_PATTERN
    ),
    OpenApiParameter(
        "version",
        {"type": "integer", "minimum": 1, "maximum": _MAX_VERSION},
        description="A version number; with a label too, that version if it carries the label (else 404).",
    ),
]
KEY_PARAMETER = OpenApiParameter(
    "key",
    {"type": "string", "minLength": 1, "maxLength": 200},
    description=(
        "Who asks (an end-user or session id): on a label split for a canary, the key's sticky arm is "
        "answered (`arm` names it). Without it a split label answers its stable arm and the canary's document."
    ),
)
CONDITIONAL_PARAMETERS = [
    OpenApiParameter(
        "If-None-Match", str, OpenApiParameter.HEADER, description="The ETag you hold: 304 when it is current."
    ),
]


def _cache_control() -> str:
    max_age = settings.API_CACHE_CONTROL_MAX_AGE
    return f"private, max-age={max_age}" if max_age else "private, no-cache"


def _conditional_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": _cache_control(), "Vary": "Authorization"}


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _check_name(name: str) -> str:
    if len(name) > 100 or not _NAME.match(name):
        raise ApiError(404, "prompt_not_found", f"No prompt called '{name[:100]}' in this project.", prompt=name[:100])
    return name


def _check_label(label: str) -> str:
    if len(label) > 50 or not _NAME.match(label):
        raise ApiError(
            400,
            "invalid_label",
            f"'{label[:50]}' is not a label name: use lower-case letters, digits, '.', '_' and '-'.",
        )
    return label


def _check_key(key: str | None) -> str | None:
    if key is not None and not 0 < len(key) <= 200:
        raise ApiError(400, "invalid_query", "key= is an end-user or session id of 1 to 200 characters.")
    return key


def _selector(params: Any) -> tuple[str | None, int | None]:
    """(label, version number); both when both are asked for: that version, if it carries that label."""
    label, version = params.get("label"), params.get("version")
    if version is not None:
        if not str(version).isdigit() or not 1 <= int(version) <= _MAX_VERSION:
            raise ApiError(400, "invalid_version", f"version must be a positive whole number, not '{version}'.")
        return (_check_label(label) if label is not None else None), int(version)
    return _check_label(label if label is not None else DEFAULT_LABEL), None


def _resolve(project_id: int, name: str, label: str | None, number: int | None) -> selectors.Resolved:
    """The version asked for. With a label and a number, the label must be on that version (else 404)."""
    resolved = selectors.resolve(project_id=project_id, name=name, label=None if number else label, number=number)
    if number is not None and label is not None:
        labelled = selectors.resolve(project_id=project_id, name=name, label=label)
        if labelled.version_id != resolved.version_id:
            raise ApiError(
                404, "label_not_on_version", f"{name} v{number} does not carry the label '{label}'.", prompt=name
            )
    return resolved


def _validated(serializer_class, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def prompt_version_of(api_key: ApiKey, name: str, number: int):
    """(prompt, version) of the key's project, or the 404 naming which is missing."""
    prompt = api_key.project.prompts.filter(name=name).first()
    if prompt is None:
        raise ApiError(404, "prompt_not_found", f"No prompt called '{name}' in this project.", prompt=name)
    version = PromptVersion.objects.filter(prompt=prompt, number=number).first()
    if version is None:
        raise ApiError(404, "version_not_found", f"{name} has no version {number}.", prompt=name)
    return prompt, version


def _acting_key(info: KeyInfo) -> ApiKey:
    """The key as a row, re-read for every write so a key revoked a moment ago cannot write."""
    api_key = account_selectors.api_key_get_active(pk=info.id)
    if api_key is None:
        raise ApiError(401, "key_revoked", f"The API key {info.prefix}… was revoked.")
    return api_key


@extend_schema(
    operation_id="prompts_list",
    summary="List the project's prompts and their labels",
    responses={200: s.PromptListSerializer, **ERRORS},
)
@api_view(["GET"])
def prompt_list(request: Request) -> Response:
    return Response({"prompts": selectors.prompt_list(project_id=request.auth.project_id)})


@extend_schema_view(
    get=extend_schema(
        operation_id="prompt_get",
        summary="Fetch a prompt by label (default production) or version",
        description="A strong ETag comes with each answer; send it in If-None-Match to get 304 while it is current.",
        parameters=[*SELECTOR_PARAMETERS, KEY_PARAMETER, *CONDITIONAL_PARAMETERS],
        responses={200: s.PromptVersionSerializer, 304: OpenApiResponse(description="Not modified"), **ERRORS},
    )
)
class PromptView(LeanGetView):
    def answer(self, request, key: KeyInfo, name: str) -> HttpResponse:
        label, number = _selector(request.GET)
        name = _check_name(name)
        user_key = _check_key(request.GET.get("key"))
        resolved = _resolve(key.project_id, name, label, number)
        arm, stable_id = "", resolved.version_id
        if resolved.canary_id and number is None:
            arm, resolved = selectors.arm_resolve(resolved, name=name, label=label, key=user_key)
        headers = _conditional_headers(resolved.etag)
        if arm:
            headers["X-Prompt-Arm"] = arm
        if _etag_matches(request, resolved.etag):
            return HttpResponse(status=304, headers=headers)
        body = cache.body_get(resolved.etag)
        if body is None:
            epoch = cache.epoch()
            version = selectors.version_load(version_id=resolved.version_id)
            document = selectors.version_body(version, resolved.labels)
            if arm:
                document = selectors.split_body(
                    document, resolved=resolved, arm=arm, stable_id=stable_id, embed_canary=user_key is None
                )
            body = _json(document)
            cache.body_put(resolved.etag, body, read_at_epoch=epoch)
        return HttpResponse(body, content_type="application/json", headers=headers)


@extend_schema(
    operation_id="prompt_render",
    summary="Render a prompt with variables",
    description="A missing or wrong-typed variable is a 400 whose `variable` names it.",
    request=s.RenderRequestSerializer,
    responses={200: s.RenderResponseSerializer, **ERRORS},
)
@api_view(["POST"])
def prompt_render(request: Request, name: str) -> Response:
    data = _validated(s.RenderRequestSerializer, request.data)
    label = data.get("label") or (None if "version" in data else DEFAULT_LABEL)
    resolved = _resolve(request.auth.project_id, _check_name(name), label, data.get("version"))
    version = selectors.version_load(version_id=resolved.version_id)
    try:
        output = render_content(content_of(version), data["variables"])
    except TemplateProblem as exc:
        code = "invalid_variable" if exc.variable else "render_failed"
        raise ApiError(400, code, str(exc), variable=exc.variable)
    body: dict[str, Any] = {"name": version.prompt.name, "version": version.number, "type": version.kind}
    body["text" if version.kind == "text" else "messages"] = output
    body["config"] = version.config
    return Response(body)


@extend_schema_view(
    get=extend_schema(
        operation_id="releases_get",
        summary="Every prompt released under a label, in one document",
        description="Store it as the offline snapshot of the Python client. It has its own ETag.",
        parameters=[SELECTOR_PARAMETERS[0], *CONDITIONAL_PARAMETERS],
        responses={200: s.ReleasesSerializer, 304: OpenApiResponse(description="Not modified"), **ERRORS},
    )
)
class ReleasesView(LeanGetView):
    def answer(self, request, key: KeyInfo) -> HttpResponse:
        label = _check_label(request.GET.get("label", DEFAULT_LABEL))
        resolved = selectors.releases_resolve(project_id=key.project_id, label=label)
        if _etag_matches(request, resolved.etag):
            return HttpResponse(status=304, headers=_conditional_headers(resolved.etag))
        body, etag = selectors.releases_body(project_id=key.project_id, project_slug=key.project_slug, label=label)
        return HttpResponse(_json(body), content_type="application/json", headers=_conditional_headers(etag))


@extend_schema(
    methods=["GET"],
    operation_id="versions_list",
    summary="A prompt's versions, newest first",
    responses={200: s.VersionListSerializer, **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="version_create",
    summary="Save a new version (write scope); 'prompts as code' from CI",
    description=(
        "parent_version must be the newest version (null for a new prompt): a newer one saved since is a 409 "
        "and nothing is saved. Content equal to the newest version saves nothing and answers 200 with created=false."
    ),
    request=s.VersionCreateSerializer,
    responses={201: s.VersionCreatedSerializer, 200: s.VersionCreatedSerializer, **WRITE_ERRORS},
)
@api_view(["GET", "POST"])
def versions(request: Request, name: str) -> Response:
    name = _check_name(name)
    if request.method == "GET":
        return Response(
            {"name": name, "versions": selectors.version_history(project_id=request.auth.project_id, name=name)}
        )
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, HasWriteScope.code, HasWriteScope.message)
    return _version_create(request, name)


def _version_create(request: Request, name: str) -> Response:
    data = _validated(s.VersionCreateSerializer, request.data)
    api_key = _acting_key(request.auth)
    with transaction.atomic():
        prompt = api_key.project.prompts.filter(name=name).first()
        if prompt is None:
            if not data["create_prompt"]:
                raise ApiError(
                    404, "prompt_not_found", f"No prompt called '{name}'; send create_prompt=true to create it."
                )
            try:
                prompt = prompt_services.prompt_create(project=api_key.project, name=name, actor=api_key)
            except prompt_services.PromptError as exc:
                raise ApiError(409, "conflict", str(exc))
        newest = prompt_selectors.version_newest(prompt=prompt)
        try:
            content = build_content(
                kind=data["type"],
                template=data["template"],
                messages=data.get("messages"),
                config=data["config"],
                variable_specs=_keep_samples(data["variables"], newest),
                prompt=prompt,
            )
        except ContentProblem as exc:
            raise ApiError(400, "invalid_content", str(exc), field=exc.field or None, line=exc.line)
        try:
            version, created = prompt_services.prompt_version_save(
                prompt=prompt,
                content=content,
                parent_number=data["parent_version"],
                message=data["message"],
                actor=api_key,
            )
        except prompt_services.StaleParent as exc:
            raise ApiError(409, exc.code, str(exc), newest_version=exc.newest.number)
        except ContentProblem as exc:
            raise ApiError(400, "invalid_content", str(exc), field=exc.field or None, line=exc.line)
        except prompt_services.PromptError as exc:
            raise ApiError(409, exc.code, str(exc))
    return Response({**selectors.version_body(version), "created": created}, status=201 if created else 200)


def _keep_samples(specs: list[dict[str, Any]], newest: PromptVersion | None) -> list[dict[str, Any]]:
    """A spec without a sample keeps the newest version's sample of that variable (same type): clients that
    pull and push prompt files (`prompt-studio push`) never see samples, and must not drop them."""
    if newest is None:
        return specs
    previous = {spec["name"]: spec for spec in newest.variables if "sample" in spec}
    kept = []
    for spec in specs:
        old = previous.get(spec["name"])
        if "sample" not in spec and old is not None and spec.get("type") == old.get("type"):
            spec = {**spec, "sample": old["sample"]}
        kept.append(spec)
    return kept


@extend_schema(
    operation_id="label_move",
    summary="Move a label to a version (write scope)",
    description=(
        "A protected label refuses with 403 review_required unless its release policy is met. With `canary` "
        "the label becomes a split (a canary by hand, not watched; see /canaries for a watched "
        "plan): the canary needs the same review on a protected label."
    ),
    parameters=[OpenApiParameter("label", str, OpenApiParameter.PATH, pattern="^(?!latest$)" + LABEL_PATTERN[1:])],
    request=s.LabelMoveSerializer,
    responses={200: s.LabelMovedSerializer, **WRITE_ERRORS},
)
@api_view(["POST"])
@permission_classes([HasWriteScope])
def label_move(request: Request, name: str, label: str) -> Response:
    name, label = _check_name(name), _check_label(label)
    if label in prompt_services.RESERVED_LABELS:
        raise ApiError(400, "invalid_label", "'latest' always follows the newest version; it cannot be moved.")
    data = _validated(s.LabelMoveSerializer, request.data)
    api_key = _acting_key(request.auth)
    prompt, version = prompt_version_of(api_key, name, data["version"])
    canary = None
    if "canary" in data:
        canary = PromptVersion.objects.filter(prompt=prompt, number=data["canary"]["version"]).first()
        if canary is None:
            raise ApiError(404, "version_not_found", f"{name} has no version {data['canary']['version']}.", prompt=name)
    try:
        outcome = prompt_services.label_set(
            prompt=prompt,
            label_name=label,
            version=version,
            actor=api_key,
            reason=data["reason"] or "moved by API",
            canary_version=canary,
            canary_weight=data["canary"]["weight"] if canary else 0,
        )
    except prompt_services.LabelMoveRefused as exc:
        raise ApiError(403, exc.code, str(exc), label=label)
    except prompt_services.PromptError as exc:
        raise ApiError(409, exc.code, str(exc))
    previous = outcome.previous.number if outcome.previous else None
    body = {"name": name, "label": label, "version": version.number, "previous_version": previous,
            "moved": outcome.moved}  # fmt: skip
    if canary is not None:
        body.update(canary_version=canary.number, canary_weight=data["canary"]["weight"])
    return Response(body)


@extend_schema(exclude=True)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def index(request: Request) -> Response:
    return Response({"detail": "Prompt Studio REST API v1", "schema": "/api/v1/schema", "docs": "/api/v1/docs"})


def _version_ref(project_id: int, name: str, value: str | None, param: str) -> tuple[PromptVersion, list[str]]:
    """A version named by its number or by a label (latest included), and its labels."""
    if not value:
        raise ApiError(400, "invalid_query", f"Give {param}= a version number or a label.")
    label, number = _selector({"version": value}) if value.isdigit() else (_check_label(value), None)
    resolved = selectors.resolve(project_id=project_id, name=name, label=label, number=number)
    return selectors.version_load(version_id=resolved.version_id), list(resolved.labels)


@extend_schema(
    operation_id="versions_diff",
    summary="Diff two versions of a prompt",
    description="`old` and `new` are each a version number or a label (production, latest, ...).",
    parameters=[
        OpenApiParameter("old", str, required=True, description="A version number or a label.", pattern=VERSION_REF),
        OpenApiParameter("new", str, required=True, description="A version number or a label.", pattern=VERSION_REF),
    ],
    responses={200: s.DiffSerializer, **ERRORS},
)
@api_view(["GET"])
def versions_diff(request: Request, name: str) -> Response:
    from apps.prompts import diff

    name = _check_name(name)
    old, old_labels = _version_ref(request.auth.project_id, name, request.GET.get("old"), "old")
    new, new_labels = _version_ref(request.auth.project_id, name, request.GET.get("new"), "new")
    changes = diff.content_diff(old, new)
    return Response(
        {
            "name": name,
            "old": {"version": old.number, "labels": old_labels},
            "new": {"version": new.number, "labels": new_labels},
            "unchanged": changes.unchanged,
            "type_changed": changes.kind_changed,
            "diff": diff.unified_diff(old, new, left_name=f"{name} v{old.number}", right_name=f"{name} v{new.number}"),
            "config": [{"name": c.name, "old": c.left, "new": c.right} for c in changes.config if c.changed],
            "variables": [{"name": c.name, "old": c.left, "new": c.right} for c in changes.variables if c.changed],
        }
    )
