"""Writes of model endpoints and playground runs. Endpoint changes write their audit event in their transaction."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import audit_record
from apps.datasets import selectors as dataset_selectors
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, DatasetVersion, VersionSource
from apps.prompts.content import Content, render_content
from apps.prompts.models import PromptVersion
from apps.prompts.sandbox import TemplateProblem
from apps.providers import crypto, gateway, local_models
from apps.providers.gateway import guard as gateway_guard
from apps.providers.models import (
    EndpointCheck,
    EndpointKind,
    EndpointMode,
    ModelEndpoint,
    PlaygroundResult,
    PlaygroundRun,
    ResultStatus,
)

logger = logging.getLogger(__name__)

_MODEL_STRING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
# Shapes of well-known provider keys; a prompt that contains one is refused before anything is sent.
# A run that a killed worker left "running" may be claimed again after this long.
ABANDONED_AFTER = timedelta(minutes=15)


class EndpointError(Exception):
    """A refused endpoint write; `field` names the form field it belongs to."""

    def __init__(self, message: str, *, field: str = ""):
        self.field = field
        super().__init__(message)


class PlaygroundError(Exception):
    """A run that cannot start; nothing was saved or sent. The message names the problem."""

    def __init__(self, message: str, *, variable: str | None = None):
        self.variable = variable
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
    if getattr(actor, "pk", None) and not isinstance(actor, str):
        endpoint.created_by = actor if hasattr(actor, "get_username") else getattr(actor, "audit_user", None)
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
    check = EndpointCheck.objects.create(
        endpoint=endpoint, requested_by=actor if hasattr(actor, "get_username") else None
    )
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


# --- playground ------------------------------------------------------------------------------------


def _texts(rendered: str | list[dict[str, str]]) -> str:
    return rendered if isinstance(rendered, str) else "\n".join(m["content"] for m in rendered)


def _refuse_keys_in_prompt(project: Project, text: str) -> None:
    """The gateway's own guard, run before the run is saved so the form can say so (the gateway runs it again)."""
    try:
        gateway.refuse_secrets(text, gateway_guard.project_secrets(project.pk))
    except gateway.SecretInPrompt as exc:
        raise PlaygroundError(exc.message) from None


@transaction.atomic
def playground_run_create(
    *,
    project: Project,
    actor: Any,
    content: Content,
    variables: dict[str, Any],
    endpoints: list[ModelEndpoint],
    version: PromptVersion | None = None,
) -> PlaygroundRun:
    """Render the prompt, save the run with one queued result per endpoint, and enqueue them on commit."""
    if not endpoints:
        raise PlaygroundError("Pick at least one model endpoint.")
    if any(e.project_id != project.pk for e in endpoints):
        raise PlaygroundError("An endpoint of another project was chosen.")
    try:
        rendered = render_content(content, variables)
    except TemplateProblem as exc:
        raise PlaygroundError(str(exc), variable=exc.variable) from None
    _refuse_keys_in_prompt(project, _texts(rendered))
    run = PlaygroundRun.objects.create(
        project=project,
        version=version,
        content=content.as_dict(),
        variables=variables,
        created_by=actor if hasattr(actor, "get_username") else None,
    )
    for endpoint in endpoints:
        try:
            _how, request = gateway.describe_request(
                endpoint,
                messages=rendered if isinstance(rendered, list) else None,
                prompt=rendered if isinstance(rendered, str) else None,
                params=content.config,
            )
            status, error_kind, error_message = ResultStatus.QUEUED, "", ""
        except gateway.GatewayError as exc:
            request = {"messages": rendered} if isinstance(rendered, list) else {"prompt": rendered}
            status, error_kind, error_message = ResultStatus.FAILED, exc.kind, exc.message
        result = PlaygroundResult.objects.create(
            run=run,
            endpoint=endpoint,
            endpoint_name=endpoint.name,
            model=endpoint.model,
            request=request,
            status=status,
            error_kind=error_kind,
            error_message=error_message,
            finished_at=timezone.now() if status == ResultStatus.FAILED else None,
        )
        if status == ResultStatus.QUEUED:
            transaction.on_commit(lambda result_id=result.pk: _enqueue(result_id))
    return run


def _enqueue(result_id: int) -> None:
    from apps.providers.tasks import run_playground_result

    run_playground_result.apply_async(args=[result_id], queue="interactive")


def _claim(result_id: int) -> bool:
    now = timezone.now()
    claimed = PlaygroundResult.objects.filter(id=result_id, status=ResultStatus.QUEUED).update(
        status=ResultStatus.RUNNING, started_at=now
    )
    if claimed:
        return True
    return (
        PlaygroundResult.objects.filter(
            id=result_id, status=ResultStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER
        ).update(started_at=now)
        == 1
    )


def playground_result_execute(*, result_id: int) -> PlaygroundResult | None:
    """Make the model call of one result and save its outcome. Only a queued (or abandoned) result runs.

    An endpoint that streams writes the growing output to the result while it runs (see _stream_into).
    """
    if not _claim(result_id):
        return None
    result = PlaygroundResult.objects.select_related("endpoint").get(pk=result_id)
    endpoint = result.endpoint
    request = dict(result.request)
    fields: dict[str, Any] = {}
    try:
        if endpoint is None:
            raise gateway.GatewayError(gateway.ErrorKind.BAD_REQUEST, "The endpoint was deleted.", retryable=False)
        messages, prompt = request.pop("messages", None), request.pop("prompt", None)
        if gateway.supports_streaming(endpoint):
            completion = _stream_into(result_id, endpoint, messages=messages, prompt=prompt, params=request)
        else:
            completion = gateway.generate(endpoint, messages=messages, prompt=prompt, params=request)
    except gateway.StreamInterrupted as exc:
        fields.update(_completion_fields(exc.partial), status=ResultStatus.FAILED)
        fields.update(error_kind=exc.kind, error_message=exc.message, attempts=exc.attempts)
    except gateway.GatewayError as exc:
        fields.update(status=ResultStatus.FAILED, error_kind=exc.kind, error_message=exc.message, attempts=exc.attempts)
    else:
        fields.update(_completion_fields(completion), status=ResultStatus.DONE)
    fields["finished_at"] = timezone.now()
    PlaygroundResult.objects.filter(pk=result_id).update(**fields)
    result.refresh_from_db()
    return result


def _completion_fields(completion: gateway.Completion) -> dict[str, Any]:
    fields = {
        "output": completion.output,
        "finish_reason": completion.finish_reason,
        "tokens_in": completion.tokens_in,
        "tokens_out": completion.tokens_out,
        "cost": completion.cost,
        "latency_ms": completion.latency_ms,
        "attempts": completion.attempts,
        "provider_request_id": completion.request_id,
    }
    if isinstance(completion, gateway.StreamedCompletion):
        fields.update(
            streamed=True,
            time_to_first_token_ms=completion.time_to_first_token_ms,
            tokens_estimated=completion.tokens_estimated,
        )
    return fields


# How often a streaming result's growing output is written (the page polls it; the embedded cache is per
# process, so the database is what the web process and the worker share).
STREAM_WRITE_SECONDS = 0.2


def _stream_into(result_id: int, endpoint: ModelEndpoint, **call: Any) -> gateway.StreamedCompletion:
    """Stream the call, writing the output so far to the result at most every STREAM_WRITE_SECONDS."""
    pieces: list[str] = []
    written_at = 0.0
    for item in gateway.stream(endpoint, **call):
        if isinstance(item, gateway.StreamedCompletion):
            return item
        pieces.append(item)
        now = time.monotonic()
        if now - written_at >= STREAM_WRITE_SECONDS:
            PlaygroundResult.objects.filter(pk=result_id, status=ResultStatus.RUNNING).update(
                output="".join(pieces), streamed=True
            )
            written_at = now
    raise gateway.GatewayError(gateway.ErrorKind.PROVIDER_ERROR, "The stream ended without its result.")


# --- a playground result as a dataset row ------------------------------------------------------------


def playground_row_metadata(result: PlaygroundResult) -> dict[str, Any]:
    """The metadata of a dataset row made from a result: which run, endpoint and prompt version it came from."""
    run = result.run
    version = run.version
    return {
        "source": "playground",
        "playground_run": run.pk,
        "playground_result": result.pk,
        "endpoint": result.endpoint_name,
        "model": result.model,
        "prompt": version.prompt.name if version else "(unsaved content)",
        "prompt_version": version.number if version else None,
    }


def playground_result_to_dataset(
    *, result: PlaygroundResult, dataset: Dataset, actor: Any, expected: str | None, message: str = ""
) -> DatasetVersion:
    """Append one row to the dataset as a new version: the run's variables as input, `expected` as expected output.

    `expected` is the result's output unless the user edited it ("" or None: no expected output). The row
    goes after the dataset's newest version (or makes its first); the datasets app writes the version and
    its audit event in one transaction.
    """
    run = result.run
    if run.project_id != dataset.project_id:
        raise PlaygroundError("That dataset belongs to another project.")
    if not result.is_finished:
        raise PlaygroundError(f"The result of {result.endpoint_name} is still {result.status}; add it once it ends.")
    if not run.variables:
        raise PlaygroundError(f"Run #{run.pk} has no variables, so the row would have no input.")
    record = {
        "input": dict(run.variables),
        "expected": expected if expected else None,
        "metadata": playground_row_metadata(result),
    }
    message = (message or "").strip() or f"Added from playground run #{run.pk} ({result.endpoint_name})"
    for attempt in range(3):
        newest = dataset_selectors.version_newest(dataset=dataset)
        try:
            if newest is None:
                return dataset_services.dataset_version_create_from_records(
                    dataset=dataset, records=[record], message=message, actor=actor, source=VersionSource.EDIT
                )
            return dataset_services.dataset_version_edit(version=newest, actor=actor, message=message, append=[record])
        except dataset_services.StaleVersion:
            if attempt == 2:  # someone saves versions faster than we can append: say so
                raise
    raise AssertionError("unreachable")
