"""Writes of model endpoints. Endpoint changes write their audit event in their transaction."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_user, audit_record
from apps.providers import crypto, gateway, local_models
from apps.providers.models import (
    EndpointCheck,
    EndpointKind,
    EndpointMode,
    ModelEndpoint,
    ResultStatus,
)

logger = logging.getLogger(__name__)

_MODEL_STRING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")


class EndpointError(Exception):
    """A refused endpoint write; `field` names the form field it belongs to."""

    def __init__(self, message: str, *, field: str = ""):
        self.field = field
        super().__init__(message)


ENDPOINT_FIELDS = (
    "name",
    "kind",
    "mode",
    "model",
    "api_base",
    "default_params",
    "timeout_seconds",
    "max_retries",
    "max_concurrency",
    "requests_per_minute",
    "price_input_per_mtok",
    "price_output_per_mtok",
    "is_active",
)


def _clean_fields(project: Project, fields: dict[str, Any], *, exclude_id: int | None = None) -> dict[str, Any]:
    data = {key: value for key, value in fields.items() if key in ENDPOINT_FIELDS}
    if "name" in data:
        data["name"] = (data["name"] or "").strip()
        if not data["name"]:
            raise EndpointError("Give the endpoint a name.", field="name")
        clash = ModelEndpoint.objects.filter(project=project, name=data["name"]).exclude(pk=exclude_id)
        if clash.exists():
            raise EndpointError(f"An endpoint called '{data['name']}' already exists in this project.", field="name")
    if "model" in data:
        data["model"] = (data["model"] or "").strip()
        if not _MODEL_STRING.match(data["model"]):
            raise EndpointError(
                "The model must be a litellm model string such as openai/gpt-4o-mini or ollama/llama3 (no spaces).",
                field="model",
            )
    if "kind" in data and data["kind"] not in EndpointKind.values:
        raise EndpointError(f"kind must be one of {', '.join(EndpointKind.values)}.", field="kind")
    if "mode" in data and data["mode"] not in EndpointMode.values:
        raise EndpointError(f"mode must be one of {', '.join(EndpointMode.values)}.", field="mode")
    if data.get("api_base"):
        data["api_base"] = data["api_base"].strip().rstrip("/")
        try:
            URLValidator(schemes=["http", "https"])(data["api_base"])
        except ValidationError:
            raise EndpointError("The base URL must be an http:// or https:// URL.", field="api_base") from None
    params = data.get("default_params")
    if params is not None:
        if not isinstance(params, dict):
            raise EndpointError("Default parameters must be a JSON object.", field="default_params")
        forbidden = sorted(k for k in params if k.lower() in {"api_key", "api_base", "base_url", "model"})
        if forbidden:
            raise EndpointError(
                f"Put {', '.join(forbidden)} in the endpoint's own fields, not in the default parameters.",
                field="default_params",
            )
    for key in ("price_input_per_mtok", "price_output_per_mtok"):
        if data.get(key) is not None and Decimal(data[key]) < 0:
            raise EndpointError("Prices cannot be negative.", field=key)
    if "timeout_seconds" in data and not 0 < float(data["timeout_seconds"]) <= 3600:
        raise EndpointError("The timeout must be between 0 and 3600 seconds.", field="timeout_seconds")
    if "max_retries" in data and not 0 <= int(data["max_retries"]) <= 10:
        raise EndpointError("Retries must be between 0 and 10.", field="max_retries")
    if "max_concurrency" in data and not 1 <= int(data["max_concurrency"]) <= 1000:
        raise EndpointError("Concurrency must be between 1 and 1000.", field="max_concurrency")
    return data


def _set_key(endpoint: ModelEndpoint, api_key: str) -> None:
    api_key = api_key.strip()
    endpoint.api_key_encrypted = crypto.encrypt(api_key)
    endpoint.api_key_last4 = crypto.last4(api_key)


@transaction.atomic
def endpoint_create(*, project: Project, actor: Any, api_key: str = "", **fields: Any) -> ModelEndpoint:
    data = _clean_fields(project, fields)
    if not data.get("name") or not data.get("model"):
        raise EndpointError("An endpoint needs a name and a model.", field="name" if not data.get("name") else "model")
    endpoint = ModelEndpoint(project=project, **data)
    endpoint.created_by = actor_user(actor)
    if api_key:
        _set_key(endpoint, api_key)
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:
        raise EndpointError(f"An endpoint called '{data['name']}' already exists in this project.", field="name")
    audit_record(
        project_id=project.pk, actor=actor, action="endpoint.created", obj=endpoint, after=endpoint.audit_snapshot()
    )
    return endpoint


@transaction.atomic
def endpoint_update(
    *, endpoint: ModelEndpoint, actor: Any, api_key: str | None = None, clear_api_key: bool = False, **fields: Any
) -> ModelEndpoint:
    """Change fields; `api_key=None` keeps the stored key, a text replaces it, `clear_api_key` removes it."""
    endpoint = ModelEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = endpoint.audit_snapshot()
    data = _clean_fields(endpoint.project, fields, exclude_id=endpoint.pk)
    for key, value in data.items():
        setattr(endpoint, key, value)
    if clear_api_key:
        endpoint.api_key_encrypted, endpoint.api_key_last4 = "", ""
    elif api_key:
        _set_key(endpoint, api_key)
    endpoint.save()
    after = endpoint.audit_snapshot()
    if clear_api_key or api_key:
        after["api_key"] = f"{'removed' if clear_api_key else 'replaced'} ({endpoint.masked_key or 'none'})"
    changed_before = {k: v for k, v in before.items() if after.get(k) != v}
    changed_after = {k: after[k] for k in changed_before}
    if changed_after:
        audit_record(
            project_id=endpoint.project_id,
            actor=actor,
            action="endpoint.updated",
            obj=endpoint,
            before=changed_before,
            after=changed_after,
        )
    return endpoint


def local_endpoint_ensure(*, project: Project, spec: local_models.ModelSpec, actor: Any) -> ModelEndpoint:
    """Create the managed endpoint of a local model, or bring its kind, mode, model and address up to date.

    Found by its name (`spec.endpoint_name`); running it again changes nothing.
    """
    managed = {
        "kind": EndpointKind.LOCAL,
        "mode": spec.mode,
        "model": f"openai/{local_models.model_alias(spec)}",
        "api_base": local_models.api_base(spec=spec),
    }
    endpoint = ModelEndpoint.objects.filter(project=project, name=spec.endpoint_name).first()
    if endpoint is None:
        # One call at a time: the model server answers one request after another anyway.
        return endpoint_create(
            project=project, actor=actor, name=spec.endpoint_name, timeout_seconds=180, max_retries=1,
            max_concurrency=1, price_input_per_mtok=0, price_output_per_mtok=0,
            # A completions server stops at 16 tokens unless told otherwise; a prompt's own max_tokens wins.
            default_params={"max_tokens": 128} if spec.mode == EndpointMode.COMPLETION else {},
            **managed,
        )  # fmt: skip
    if any(getattr(endpoint, field) != value for field, value in managed.items()):
        return endpoint_update(endpoint=endpoint, actor=actor, **managed)
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: ModelEndpoint, actor: Any) -> None:
    audit_record(
        project_id=endpoint.project_id,
        actor=actor,
        action="endpoint.deleted",
        obj=endpoint,
        before=endpoint.audit_snapshot(),
    )
    endpoint.delete()


def endpoint_keys_rotate() -> tuple[int, list[str]]:
    """Re-encrypt every stored key with the current first key; returns (rotated, names that could not be read)."""
    rotated, unreadable = 0, []
    for endpoint in ModelEndpoint.objects.exclude(api_key_encrypted="").select_related("project"):
        try:
            token = crypto.rotate(endpoint.api_key_encrypted)
        except crypto.KeyUnreadable:
            unreadable.append(f"{endpoint.project.slug}/{endpoint.name}")
            continue
        ModelEndpoint.objects.filter(pk=endpoint.pk).update(api_key_encrypted=token)
        rotated += 1
    return rotated, unreadable


def endpoint_check(*, endpoint: ModelEndpoint) -> gateway.Completion:
    """Test connection: one token; raises gateway.GatewayError with the provider's error in plain words."""
    return gateway.check_connection(endpoint)  # the gateway refuses a local model that is not serving yet


@transaction.atomic
def endpoint_check_start(*, endpoint: ModelEndpoint, actor: Any) -> EndpointCheck:
    """Queue a Test connection on the interactive queue; a check of this endpoint still waiting is reused."""
    waiting = (
        EndpointCheck.objects.filter(endpoint=endpoint, status=ResultStatus.QUEUED)
        .filter(created_at__gte=timezone.now() - EndpointCheck.PATIENCE)
        .first()
    )
    if waiting is not None:
        return waiting
    check = EndpointCheck.objects.create(endpoint=endpoint, requested_by=actor_user(actor))
    transaction.on_commit(lambda: _enqueue_check(check.pk))
    return check


def _enqueue_check(check_id: int) -> None:
    from apps.providers.tasks import check_endpoint

    check_endpoint.apply_async(args=[check_id], queue="interactive")


def endpoint_check_execute(*, check_id: int) -> EndpointCheck | None:
    """Make the one-token call of a queued check and save its outcome; a check already claimed is left alone."""
    if not EndpointCheck.objects.filter(pk=check_id, status=ResultStatus.QUEUED).update(
        status=ResultStatus.RUNNING, started_at=timezone.now()
    ):
        return None
    check = EndpointCheck.objects.select_related("endpoint").get(pk=check_id)
    try:
        completion = endpoint_check(endpoint=check.endpoint)
    except gateway.GatewayError as exc:
        fields: dict[str, Any] = {"status": ResultStatus.FAILED, "error_kind": exc.kind, "error_message": exc.message}
    else:
        fields = {
            "status": ResultStatus.DONE,
            "latency_ms": completion.latency_ms,
            "provider_request_id": completion.request_id,
        }
    EndpointCheck.objects.filter(pk=check_id).update(finished_at=timezone.now(), **fields)
    check.refresh_from_db()
    return check


def endpoint_refuse_unready(*, endpoint: ModelEndpoint) -> None:
    """A managed local endpoint whose model is not serving yet fails with its progress, not a refused connection
    (every gateway call checks this itself; this is for pages that want to say so before calling)."""
    if endpoint.kind != EndpointKind.LOCAL:
        return
    ready, sentence = local_models.readiness(local_models.spec_for_model(endpoint.model))
    if not ready:
        raise gateway.GatewayError(gateway.ErrorKind.PROVIDER_ERROR, sentence, retryable=False)
