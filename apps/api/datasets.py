"""REST for datasets: list datasets and versions, page through a version's rows, add a version from JSONL."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import responses
from apps.api.auth import HasWriteScope
from apps.api.errors import ApiError
from apps.api.parsers import read_bounded
from apps.core import safejson
from apps.datasets import services
from apps.datasets.models import Dataset, DatasetVersion, DatasetVersionItem

PER_PAGE = 100
DATASET_NAME = OpenApiParameter(
    "name",
    str,
    OpenApiParameter.PATH,
    description="The dataset's name: up to 100 characters, not starting or ending with a space.",
    pattern=r"^[^\s\x00](?:[^\x00]{0,98}[^\s\x00])?$",
)
PAGE = OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1})


class JsonLinesParser(BaseParser):
    """The body as text: one JSON object per line ({"input": {...}, "expected": ..., "metadata": {...}}).

    DATASET_MAX_UPLOAD_MB holds here as for a file uploaded on the web: a body
    that declares more is refused with 413 before a byte of it is read.
    """

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        raw = read_bounded(
            stream,
            parser_context,
            limit=settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024,
            setting="DATASET_MAX_UPLOAD_MB",
        )
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "invalid_encoding", f"The body is not UTF-8 (byte {exc.start}).")


def _check_name(name: str) -> str:
    if len(name) > 100 or "\x00" in name:  # the database cannot even be asked about a NUL character
        raise ApiError(404, "dataset_not_found", "No such dataset in this project.")
    return name


def _dataset(project_id: int, name: str) -> Dataset:
    dataset = Dataset.objects.filter(project_id=project_id, name=_check_name(name)).first()
    if dataset is None:
        raise ApiError(404, "dataset_not_found", f"No dataset called '{name[:100]}' in this project.")
    return dataset


def _version_summary(version: DatasetVersion) -> dict[str, Any]:
    return {
        "version": version.number,
        "message": version.message,
        "rows": version.row_count,
        "input_columns": version.input_columns,
        "metadata_columns": version.metadata_columns,
        "has_expected": version.has_expected,
        "author": version.author_repr,
        "created_at": version.created_at,
    }


def _records(text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = safejson.loads(line)
        except json.JSONDecodeError as exc:  # and safejson's JsonProblem: NaN, huge numbers, deep nesting
            raise ApiError(400, "invalid_jsonl", f"Line {number}, column {exc.colno}: {exc.msg}.", line=number)
        if not isinstance(record, dict) or not isinstance(record.get("input"), dict):
            raise ApiError(
                400,
                "invalid_jsonl",
                f'Line {number}: expected {{"input": {{...}}, "expected": ..., "metadata": {{}}}}.',
            )
        records.append(record)
    if not records:
        raise ApiError(400, "empty_body", "The body has no rows: send one JSON object per line.")
    return records


@extend_schema(
    operation_id="datasets_list",
    summary="The project's datasets",
    responses={200: OpenApiTypes.OBJECT, **responses.AUTH},
)
@api_view(["GET"])
def dataset_list(request: Request) -> Response:
    rows = Dataset.objects.filter(project_id=request.auth.project_id).order_by("name")
    newest = {
        v["dataset_id"]: v
        for v in DatasetVersion.objects.filter(dataset__in=rows)
        .order_by("dataset_id", "-number")
        .values("dataset_id", "number", "row_count")
    }
    return Response(
        {
            "datasets": [
                {
                    "name": d.name,
                    "description": d.description,
                    "newest_version": newest.get(d.pk, {}).get("number"),
                    "rows": newest.get(d.pk, {}).get("row_count"),
                }
                for d in rows
            ]
        }
    )


@extend_schema(
    methods=["GET"],
    operation_id="dataset_versions",
    summary="A dataset's versions, newest first",
    parameters=[DATASET_NAME],
    responses={200: OpenApiTypes.OBJECT, **responses.AUTH, **responses.NOT_FOUND},
)
@extend_schema(
    methods=["POST"],
    operation_id="dataset_version_create",
    summary="Add a version from JSON Lines in the body (write scope)",
    description='Content-Type: application/x-ndjson; one {"input": {...}, "expected": ..., "metadata": {...}} per '
    "line. All or nothing. ?message=... describes it; ?create=true creates the dataset if it is new.",
    request={"application/x-ndjson": {"type": "string", "minLength": 1}},
    parameters=[DATASET_NAME, OpenApiParameter("message", str), OpenApiParameter("create", bool)],
    responses={201: OpenApiTypes.OBJECT, **responses.WRITE_ERRORS},
)
@api_view(["GET", "POST"])
@parser_classes([JsonLinesParser])
def dataset_versions(request: Request, name: str) -> Response:
    project_id = request.auth.project_id
    if request.method == "GET":
        dataset = _dataset(project_id, name)
        versions = DatasetVersion.objects.filter(dataset=dataset).order_by("-number")
        return Response({"name": dataset.name, "versions": [_version_summary(v) for v in versions]})
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, HasWriteScope.code, HasWriteScope.message)
    if not isinstance(request.data, str):
        raise ApiError(415, "unsupported_media_type", "Send the rows as application/x-ndjson.")
    create = request.GET.get("create", "false")
    if create not in ("true", "false"):
        raise ApiError(400, "invalid_query", f"create must be true or false, not '{create[:20]}'.")
    create = create == "true"
    records = _records(request.data)
    from apps.api.views import _acting_key

    api_key = _acting_key(request.auth)
    with transaction.atomic():
        dataset = Dataset.objects.filter(project_id=project_id, name=_check_name(name)).first()
        try:
            if dataset is None:
                if not create:
                    raise ApiError(404, "dataset_not_found", f"No dataset called '{name[:100]}'; add ?create=true.")
                dataset = services.dataset_create(project=api_key.project, name=name, actor=api_key)
            version = services.dataset_version_create_from_records(
                dataset=dataset,
                records=records,
                message=request.GET.get("message", "").replace("\x00", "")[:500] or "added through the API",
                actor=api_key,
            )
        except services.DatasetError as exc:
            raise ApiError(400, "invalid_rows", str(exc))
    return Response({"name": dataset.name, **_version_summary(version)}, status=201)


@extend_schema(
    operation_id="dataset_version_items",
    summary="A version's rows, 100 per page, in order",
    parameters=[DATASET_NAME, PAGE],
    responses={200: OpenApiTypes.OBJECT, **responses.READ_ERRORS},
)
@api_view(["GET"])
def dataset_version_items(request: Request, name: str, number: int) -> Response:
    dataset = _dataset(request.auth.project_id, name)
    version = DatasetVersion.objects.filter(dataset=dataset, number=number).first() if number < 2**31 else None
    if version is None:
        raise ApiError(404, "version_not_found", f"{dataset.name} has no version {number}.")
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        raise ApiError(400, "invalid_page", "page must be a whole number.")
    pages = max(1, -(-version.row_count // PER_PAGE))
    if not 1 <= page <= pages:
        raise ApiError(404, "page_not_found", f"There are {pages} pages.")
    start = (page - 1) * PER_PAGE
    rows = (
        DatasetVersionItem.objects.filter(version=version, position__gte=start, position__lt=start + PER_PAGE)
        .select_related("item")
        .order_by("position")
    )
    return Response(
        {
            "name": dataset.name,
            "version": version.number,
            "page": page,
            "pages": pages,
            "rows": [
                {"row": r.position + 1, "input": r.item.input, "expected": r.item.expected, "metadata": r.item.metadata}
                for r in rows
            ],
        }
    )


def _json_body(request: Request) -> dict[str, Any]:
    if not HasWriteScope().has_permission(request, None):
        raise ApiError(403, HasWriteScope.code, HasWriteScope.message)
    body = request.data
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "Send a JSON object.")
    columns = body.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ApiError(400, "invalid_columns", "'columns' must be a list of input column names.")
    return body


def _source_version(request: Request, name: str, number: int) -> DatasetVersion:
    dataset = _dataset(request.auth.project_id, name)
    version = DatasetVersion.objects.select_related("dataset__project").filter(dataset=dataset, number=number).first()
    if version is None:
        raise ApiError(404, "version_not_found", f"{dataset.name} has no version {number}.")
    return version


_COLUMNS = {"type": "array", "items": {"type": "string"}, "description": "Input columns of the version to vary."}
COUNTERFACTUAL_SCHEMA = {
    "type": "object",
    "properties": {
        "attribute": {"type": "string", "description": "A lexicon's attribute: gender, age, religion, ..."},
        "columns": _COLUMNS,
        "values": {"type": ["array", "null"], "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
    },
    "required": ["attribute", "columns"],
}
PERTURB_SCHEMA = {
    "type": "object",
    "properties": {
        "kinds": {"type": "array", "items": {"enum": ["typos", "casing", "whitespace", "reorder", "paraphrase"]}},
        "columns": _COLUMNS,
        "seed": {"type": "integer"},
        "rate": {"type": "number", "minimum": 0, "maximum": 0.5},
        "endpoint": {"type": ["integer", "null"], "description": "A model endpoint id, for paraphrase."},
    },
    "required": ["kinds", "columns"],
}


@extend_schema(
    operation_id="dataset_version_counterfactual",
    summary="A new version of counterfactual pairs swapped along an attribute (write scope)",
    description='Body: {"attribute": "gender", "columns": ["ticket"], "values": ["female", "male"]} (values '
    "optional: the lexicon's first two). Rows carry pair_id, attribute, attribute_value, pair_role in metadata.",
    request={"application/json": COUNTERFACTUAL_SCHEMA},
    responses={201: OpenApiTypes.OBJECT, **responses.WRITE_ERRORS},
)
@api_view(["POST"])
def dataset_version_counterfactual(request: Request, name: str, number: int) -> Response:
    body = _json_body(request)
    version = _source_version(request, name, number)
    values = body.get("values")
    if values is not None and (not isinstance(values, list) or len(values) != 2):
        raise ApiError(400, "invalid_values", "'values' must be the two attribute values to swap between.")
    from apps.api.views import _acting_key

    try:
        new = services.dataset_version_counterfactual(
            version=version,
            actor=_acting_key(request.auth),
            attribute=str(body.get("attribute") or ""),
            columns=body["columns"],
            values=tuple(str(v) for v in values) if values else None,
        )
    except services.DatasetError as exc:
        raise ApiError(400, "invalid_counterfactual", str(exc))
    return Response({"name": version.dataset.name, **_version_summary(new)}, status=201)


@extend_schema(
    operation_id="dataset_version_perturb",
    summary="A new version of originals and perturbed copies (write scope)",
    description='Body: {"kinds": ["typos", "casing", "whitespace", "reorder", "paraphrase"], "columns": [...], '
    '"seed": 0, "rate": 0.05, "endpoint": <id, for paraphrase; the local model if left out>}.',
    request={"application/json": PERTURB_SCHEMA},
    responses={201: OpenApiTypes.OBJECT, **responses.WRITE_ERRORS},
)
@api_view(["POST"])
def dataset_version_perturb(request: Request, name: str, number: int) -> Response:
    from apps.datasets import counterfactual

    body = _json_body(request)
    version = _source_version(request, name, number)
    kinds = body.get("kinds")
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ApiError(400, "invalid_kinds", "'kinds' must be a list of perturbations.")
    seed, rate, endpoint = body.get("seed", 0), body.get("rate", 0.05), body.get("endpoint")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ApiError(400, "invalid_seed", "'seed' must be a whole number.")
    if not isinstance(rate, int | float) or isinstance(rate, bool):
        raise ApiError(400, "invalid_rate", "'rate' must be a number between 0 and 0.5.")
    if endpoint is not None and (not isinstance(endpoint, int) or isinstance(endpoint, bool)):
        raise ApiError(400, "invalid_endpoint", "'endpoint' must be a model endpoint id.")
    from apps.api.views import _acting_key

    try:
        paraphrase = (
            counterfactual.paraphraser_for(version.dataset.project, endpoint) if "paraphrase" in kinds else None
        )
        new = services.dataset_version_perturb(
            version=version, actor=_acting_key(request.auth), kinds=kinds, columns=body["columns"], seed=seed,
            rate=float(rate), paraphrase=paraphrase,
        )  # fmt: skip
    except (services.DatasetError, counterfactual.LexiconError) as exc:
        raise ApiError(400, "invalid_perturbation", str(exc))
    return Response({"name": version.dataset.name, **_version_summary(new)}, status=201)
