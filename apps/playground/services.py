"""Writes of playground runs: render, refuse keys in the prompt, queue one result per endpoint, run it, keep it."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_user
from apps.datasets import selectors as dataset_selectors
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, DatasetVersion, VersionSource
from apps.playground.models import PlaygroundResult, PlaygroundRun
from apps.prompts.content import Content, render_content
from apps.prompts.models import PromptVersion
from apps.prompts.sandbox import TemplateProblem
from apps.providers import gateway
from apps.providers.gateway import guard as gateway_guard
from apps.providers.models import ModelEndpoint, ResultStatus

logger = logging.getLogger(__name__)

# A run that a killed worker left "running" may be claimed again after this long.
ABANDONED_AFTER = timedelta(minutes=15)


class PlaygroundError(Exception):
    """A run that cannot start; nothing was saved or sent. The message names the problem."""

    def __init__(self, message: str, *, variable: str | None = None):
        self.variable = variable
        super().__init__(message)


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
        created_by=actor_user(actor),
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
    from apps.playground.tasks import run_playground_result

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
