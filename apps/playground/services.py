"""Writes of playground runs: render, refuse keys in the prompt, queue one result per endpoint, run it, keep it."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
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


def _texts(rendered: str | list[dict[str, Any]]) -> str:
    return rendered if isinstance(rendered, str) else "\n".join(str(m["content"]) for m in rendered)


def _refuse_keys_in_prompt(project: Project, text: str) -> None:
    """The gateway's own guard, run before the run is saved so the form can say so (the gateway runs it again)."""
    try:
        gateway.refuse_secrets(text, gateway_guard.project_secrets(project.pk))
    except gateway.SecretInPrompt as exc:
        raise PlaygroundError(exc.message) from None


# Images sent with a run: at most this many, each at most this large (they are stored with the run).
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 2 * 1024 * 1024
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _image_type(head: bytes) -> str | None:
    for signature, content_type in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def playground_images_read(files: list[Any]) -> list[dict[str, Any]]:
    """Uploaded files as images to send: refused unless each is a PNG, JPEG, GIF or WebP (by its bytes, not its
    name) of at most MAX_IMAGE_BYTES, and there are at most MAX_IMAGES."""
    if len(files) > MAX_IMAGES:
        raise PlaygroundError(f"At most {MAX_IMAGES} images per run; {len(files)} were chosen.")
    images = []
    for upload in files:
        name = str(getattr(upload, "name", "") or "image")[:200]
        if upload.size > MAX_IMAGE_BYTES:
            raise PlaygroundError(
                f"The image '{name}' is {upload.size / 1024 / 1024:.1f} MB; the limit is "
                f"{MAX_IMAGE_BYTES // 1024 // 1024} MB per image. Nothing was sent."
            )
        data = upload.read()
        content_type = _image_type(data[:16])
        if content_type is None:
            raise PlaygroundError(f"'{name}' is not a PNG, JPEG, GIF or WebP image. Nothing was sent.")
        encoded = base64.b64encode(data).decode()
        images.append(
            {"name": name, "content_type": content_type, "size": len(data),
             "data_url": f"data:{content_type};base64,{encoded}"}
        )  # fmt: skip
    return images


def _with_images(rendered: str | list[dict[str, Any]], images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with the images as content parts of the last user message (litellm's format)."""
    messages = [{"role": "user", "content": rendered}] if isinstance(rendered, str) else [dict(m) for m in rendered]
    parts = [{"type": "image_url", "image_url": {"url": image["data_url"]}} for image in images]
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] = [{"type": "text", "text": message["content"]}, *parts]
            return messages
    return [*messages, {"role": "user", "content": parts}]


def output_schema_check(schema: Any) -> None:
    """Refuse an output schema that is not a valid JSON schema (object at the top), naming the problem."""
    import jsonschema

    if not isinstance(schema, dict):
        raise PlaygroundError("The output schema must be a JSON object (a JSON schema).")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top"
        raise PlaygroundError(f"The output schema is not a valid JSON schema at {where}: {exc.message}") from None


def structured_output(output: str, response_format: Any) -> tuple[Any, list[str]]:
    """(the output parsed as JSON, what the schema refuses in it) for a JSON response format; (None, [])
    for any other. Output that is not JSON at all is one error."""
    if not isinstance(response_format, dict) or response_format.get("type") not in ("json_object", "json_schema"):
        return None, []
    try:
        parsed = json.loads(output)
    except (TypeError, ValueError) as exc:
        return None, [f"The output is not JSON: {exc}"]
    # A managed local model is sent the schema as {"type": "json_object", "schema": ...} (see the gateway).
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
    if not isinstance(schema, dict):
        return parsed, []
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(parsed), key=lambda e: list(e.path))
    return parsed, [f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:20]]


@dataclass
class Column:
    """One side of a comparison: what runs, under which label, and the saved version it is (if any)."""

    label: str
    content: Content
    version: PromptVersion | None = None


@transaction.atomic
def playground_run_create(
    *,
    project: Project,
    actor: Any,
    content: Content,
    variables: dict[str, Any],
    endpoints: list[ModelEndpoint],
    version: PromptVersion | None = None,
    compare: list[Column] | None = None,
    images: list[dict[str, Any]] | None = None,
) -> PlaygroundRun:
    """Render the prompt (and each compared column), save the run with one queued result per column and
    endpoint, and enqueue them on commit. Images go to every result, as parts of the last user message."""
    if not endpoints:
        raise PlaygroundError("Pick at least one model endpoint.")
    if any(e.project_id != project.pk for e in endpoints):
        raise PlaygroundError("An endpoint of another project was chosen.")
    images = list(images or [])
    if images:
        for endpoint in endpoints:
            if not gateway.supports_images(endpoint):
                raise PlaygroundError(
                    f"'{endpoint.name}' ({endpoint.model}) does not take images; untick it or remove the images."
                )
    schema = ((content.config.get("response_format") or {}) if isinstance(content.config.get("response_format"), dict)
              else {}).get("json_schema")  # fmt: skip
    if schema is not None:
        output_schema_check(schema.get("schema") if isinstance(schema, dict) else schema)
    columns = [Column(label=f"v{version.number}" if version else "draft", content=content, version=version)]
    columns += list(compare or [])
    renders = []
    for column in columns:
        try:
            rendered = render_content(column.content, variables)
        except TemplateProblem as exc:
            prefix = f"{column.label}: " if len(columns) > 1 else ""
            raise PlaygroundError(prefix + str(exc), variable=exc.variable) from None
        _refuse_keys_in_prompt(project, _texts(rendered))
        renders.append(_with_images(rendered, images) if images else rendered)
    run = PlaygroundRun.objects.create(
        project=project,
        version=version,
        content=content.as_dict(),
        variables=variables,
        images=images,
        created_by=actor_user(actor),
    )
    for column, rendered in zip(columns, renders, strict=True):
        for endpoint in endpoints:
            _result_create(run, endpoint, column.label, column.version, rendered, content.config)
    return run


def _result_create(run, endpoint, label, version, rendered, params) -> PlaygroundResult:
    try:
        _how, request = gateway.describe_request(
            endpoint,
            messages=rendered if isinstance(rendered, list) else None,
            prompt=rendered if isinstance(rendered, str) else None,
            params=params,
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
        label=label,
        version=version,
        request=request,
        status=status,
        error_kind=error_kind,
        error_message=error_message,
        finished_at=timezone.now() if status == ResultStatus.FAILED else None,
    )
    if status == ResultStatus.QUEUED:
        transaction.on_commit(lambda result_id=result.pk: _enqueue(result_id))
    return result


@transaction.atomic
def playground_result_continue(
    *, result: PlaygroundResult, actor: Any, text: str = "", tool_answers: dict[str, str] | None = None
) -> PlaygroundRun:
    """Continue the conversation of a finished result as a new run on the same endpoint: the model's answer
    (with its tool calls), then an answer typed for every tool call, then the user's next message (if any).

    A result that asked for tools needs an answer for each call; one that did not needs a message.
    """
    run = result.run
    if result.status != ResultStatus.DONE:
        raise PlaygroundError(f"The result of {result.endpoint_name} is {result.status}; only a finished answer "
                              "can be continued.")  # fmt: skip
    if result.endpoint is None:
        raise PlaygroundError("The endpoint of that result was deleted.")
    if "messages" not in result.request:
        raise PlaygroundError(f"'{result.endpoint_name}' does text completions: there is no conversation to continue.")
    text = (text or "").replace("\r\n", "\n").strip()
    answers = {key: (value or "").replace("\r\n", "\n").strip() for key, value in (tool_answers or {}).items()}
    # "" rather than null: llama.cpp's function-calling template reads the content of every message.
    assistant: dict[str, Any] = {"role": "assistant", "content": result.output}
    follow: list[dict[str, Any]] = []
    if result.tool_calls:
        assistant["tool_calls"] = result.tool_calls
        for call in result.tool_calls:
            answer = answers.get(call["id"], "")
            if not answer:
                raise PlaygroundError(f"Answer the call to {call['function']['name']} before sending.")
            follow.append({"role": "tool", "tool_call_id": call["id"], "content": answer})
    elif not text:
        raise PlaygroundError("Write the next message of the conversation.")
    if text:
        follow.append({"role": "user", "content": text})
    _refuse_keys_in_prompt(run.project, "\n".join(m["content"] for m in follow))
    request = {key: value for key, value in result.request.items() if key != "messages"}
    request["messages"] = [*result.request["messages"], assistant, *follow]
    follow_up = PlaygroundRun.objects.create(
        project=run.project,
        version=run.version,
        content=run.content,
        variables=run.variables,
        parent_result=result,
        images=run.images,
        created_by=actor_user(actor),
    )
    queued = PlaygroundResult.objects.create(
        run=follow_up,
        endpoint=result.endpoint,
        endpoint_name=result.endpoint.name,
        model=result.endpoint.model,
        label=result.label,
        version=result.version,
        request=request,
    )
    transaction.on_commit(lambda result_id=queued.pk: _enqueue(result_id))
    return follow_up


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
        # Tool calls arrive whole, not as text: a call that declares tools is not streamed.
        if gateway.supports_streaming(endpoint) and not request.get("tools"):
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
        fields["structured"], fields["schema_errors"] = structured_output(
            completion.output, result.request.get("response_format")
        )
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
        "tool_calls": list(getattr(completion, "tool_calls", None) or []),
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
