"""The playground: run a prompt (saved or not) against endpoints, watch the results, keep one as a dataset row."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.datasets import selectors as dataset_selectors
from apps.datasets.services import DatasetError
from apps.playground import selectors, services
from apps.playground.forms import (
    ResultToDatasetForm,
    VariableProblem,
    param_rows,
    run_config,
    variable_rows,
    variable_values,
)
from apps.playground.tree import structured_tree
from apps.prompts import selectors as prompt_selectors
from apps.prompts import services as prompt_services
from apps.prompts.content import ContentProblem, build_content, content_of
from apps.prompts.models import PromptKind, PromptVersion
from apps.providers import selectors as provider_selectors
from apps.providers.models import EndpointKind, EndpointMode, ResultStatus


def _chosen_version(request: HttpRequest, params) -> tuple[Any, PromptVersion | None]:
    name = (params.get("prompt") or "").strip()
    if not name:
        return None, None
    prompt = prompt_selectors.prompt_get(project=request.project, name=name)
    number = (params.get("version") or "").strip()
    if number:
        try:
            return prompt, prompt_selectors.version_get(prompt=prompt, number=int(number))
        except ValueError:
            raise Http404("No such version.") from None
    return prompt, prompt_selectors.version_newest(prompt=prompt)


def _posted_messages(post) -> list[dict[str, str]]:
    rows = []
    for index in range(int(post.get("msg_count") or 0)):
        role, text = post.get(f"msg-{index}-role", ""), post.get(f"msg-{index}-content", "")
        if role or text:
            rows.append({"role": role, "content": text})
    return rows


def _posted_content(post, version: PromptVersion | None, *, project=None):
    kind = version.kind if version else (post.get("kind") if post.get("kind") in PromptKind.values else "text")
    specs = [dict(spec) for spec in (version.variables if version else [])]
    return build_content(
        kind=kind,
        template=post.get("template", "") if kind == PromptKind.TEXT else "",
        messages=_posted_messages(post) if kind == PromptKind.CHAT else None,
        config=run_config(post, version.config if version else {}),
        variable_specs=specs,
        project=project,  # a draft's includes resolve in the project, to where their labels point now
    )


def _compared_versions(prompt, params, version: PromptVersion | None) -> list[PromptVersion]:
    """The saved versions to run beside the draft (`compare=N`, repeatable), the loaded one left out."""
    if prompt is None:
        return []
    numbers = []
    for value in params.getlist("compare"):
        try:
            number = int(value)
        except ValueError:
            raise Http404("No such version.") from None
        if number not in numbers and (version is None or number != version.number):
            numbers.append(number)
    found = []
    for number in numbers[:4]:
        try:  # a number left over from another prompt (the pick form keeps it) is not compared
            found.append(prompt_selectors.version_get(prompt=prompt, number=number))
        except Http404:
            continue
    return found


def _columns(compared: list[PromptVersion], config: dict[str, Any]) -> list[services.Column]:
    """Each compared version (its saved content, whatever it holds) with the run's parameters, so the columns
    differ by their text only."""
    return [
        services.Column(label=f"v{v.number}", content=dataclasses.replace(content_of(v), config=config), version=v)
        for v in compared
    ]


def _all_specs(specs: list[dict[str, Any]], compared: list[PromptVersion]) -> list[dict[str, Any]]:
    """The draft's variables, then those only a compared version uses."""
    names = {spec["name"] for spec in specs}
    merged = list(specs)
    for v in compared:
        for spec in v.variables:
            if spec["name"] not in names:
                names.add(spec["name"])
                merged.append(spec)
    return merged


def _selected_ids(post) -> list[int]:
    try:
        return [int(value) for value in post.getlist("endpoints")]
    except ValueError:
        raise Http404("No such model endpoint in this project.") from None


def _default_selection(endpoints) -> list[int]:
    """A local chat endpoint, else another real chat endpoint, else a real one, else any."""
    # A chat endpoint takes a text prompt and chat messages alike; a completion endpoint only text.
    ranked = sorted(
        endpoints,
        key=lambda e: (e.kind == EndpointKind.SIMULATED, e.mode != EndpointMode.CHAT, e.kind != EndpointKind.LOCAL),
    )
    return [ranked[0].pk] if ranked else []


def _local_notes(endpoints) -> list[str]:
    notes = []
    for endpoint in endpoints:
        status = provider_selectors.local_status(endpoint=endpoint)
        if status is not None and not status["ready"]:
            notes.append(f"{endpoint.name}: {status['summary']}")
    return notes


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def playground(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    prompt, version = _chosen_version(request, params)
    compared = _compared_versions(prompt, params, version)
    endpoints = list(provider_selectors.endpoint_list(project=request.project, active_only=True))
    context: dict[str, Any] = {
        "prompt": prompt,
        "version": version,
        "compared": compared,
        "compared_numbers": [v.number for v in compared],
        "max_images": services.MAX_IMAGES,
        "max_image_mb": services.MAX_IMAGE_BYTES // 1024 // 1024,
        "prompt_list": prompt_selectors.prompt_list(project=request.project),
        "version_list": prompt_selectors.version_list(prompt=prompt) if prompt else [],
        "endpoints": endpoints,
        "recent_runs": selectors.playground_run_list(project=request.project),
        "local_notes": _local_notes(endpoints),
    }
    if request.method == "GET":
        base = content_of(version) if version else None
        context.update(
            kind=base.kind if base else PromptKind.TEXT,
            template=base.template if base else "",
            chat_messages=base.messages if base else [],  # not `messages`: that is Django's flash list
            rows=variable_rows(_all_specs(base.variables if base else [], compared)),
            selected=_default_selection(endpoints),
            params=param_rows(base.config if base else {}),
        )
        return render(request, "playground/playground.html", context)

    context.update(
        kind=version.kind if version else (params.get("kind") or "text"),
        template=params.get("template", ""),
        chat_messages=_posted_messages(params),
        selected=_selected_ids(params),
        params=param_rows({}, params),
    )
    try:
        content = _posted_content(params, version, project=request.project)
    except ContentProblem as exc:
        specs = _all_specs(version.variables if version else [], compared)
        context.update(problem=str(exc), rows=variable_rows(specs, params))
        return _playground_answer(request, context, status=400)
    specs = _all_specs(content.variables, compared)
    context["rows"] = variable_rows(specs, params)
    if params.get("intent") == "refresh":
        return render(request, "playground/playground.html#variables", context)
    if params.get("intent") == "save":
        return _save_as_version(request, context, prompt, content)
    try:
        values = variable_values(specs, params)
        chosen = provider_selectors.endpoints_by_ids(project=request.project, ids=context["selected"])
        run = services.playground_run_create(
            project=request.project,
            actor=request.user,
            content=content,
            variables=values,
            endpoints=chosen,
            version=version if version is not None and version.content_hash == content.hash() else None,
            compare=_columns(compared, content.config),
            images=services.playground_images_read(request.FILES.getlist("images")),
        )
    except (VariableProblem, services.PlaygroundError) as exc:
        context["problem"] = str(exc)
        return _playground_answer(request, context, status=400)
    if request.htmx:
        response = render(request, "playground/playground_run.html#results", _run_context(run))
        response.write('<div id="problem" class="mt-3" hx-swap-oob="true"></div>')
        return response
    return redirect("playground:run", project_slug=request.project.slug, run_id=run.pk)


def _save_as_version(request: HttpRequest, context: dict[str, Any], prompt, content) -> HttpResponse:
    """The draft (text and parameters) as a new version of the prompt, on top of the version it was opened
    from: the editor's rules, so a version saved since is a conflict shown to the user, never overwritten."""
    if prompt is None:
        context["problem"] = "Pick a prompt first: a scratch draft has no prompt to save a version of."
        return _playground_answer(request, context, status=400)
    parent = request.POST.get("parent") or None
    try:
        saved = prompt_services.prompt_version_create(
            prompt=prompt,
            content=content,
            parent_number=int(parent) if parent else None,
            message=request.POST.get("message", "") or "Saved from the playground",
            actor=request.user,
        )
    except prompt_services.StaleParent as exc:
        context.update(problem=str(exc), conflict=exc)
        return _playground_answer(request, context, status=409)
    except (ValueError, ContentProblem, prompt_services.PromptError) as exc:
        context["problem"] = str(exc)
        return _playground_answer(request, context, status=400)
    messages.success(request, f"Saved v{saved.number} of {prompt.name}.")
    url = reverse("playground:playground", args=[request.project.slug])
    url += f"?prompt={quote(prompt.name)}&version={saved.number}"
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _playground_answer(request: HttpRequest, context: dict[str, Any], *, status: int) -> HttpResponse:
    if request.htmx:
        # The problem replaces the message box, and the form keeps everything typed.
        response = render(request, "playground/playground.html#problem", context)
        response["HX-Retarget"] = "#problem"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "playground/playground.html", context, status=status)


def _pretty_arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _turns(result) -> list[dict[str, Any]]:
    """The conversation a continued result was sent, as readable turns (text, tool calls, image count)."""
    turns = []
    for message in result.request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            text = " ".join(part.get("text", "") for part in content if part.get("type") == "text")
            images = sum(1 for part in content if part.get("type") == "image_url")
        else:
            text, images = content or "", 0
        turns.append({"role": message.get("role"), "text": text, "images": images,
                      "calls": message.get("tool_calls") or []})  # fmt: skip
    return turns


def _run_context(run) -> dict[str, Any]:
    results = list(run.results.all())
    for result in results:
        result.tree = structured_tree(result.structured) if result.structured is not None else None
        result.turns = _turns(result) if run.parent_result_id else []
        for call in result.tool_calls:
            call["pretty"] = _pretty_arguments(call["function"]["arguments"])
    return {
        "run": run,
        "results": results,
        "finished": all(r.is_finished for r in results),
        "running": any(r.status == ResultStatus.RUNNING for r in results),
    }


@require_GET
@project_role_required(Role.EDITOR)
def playground_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.playground_run_get(project=request.project, run_id=run_id)
    context = _run_context(run)
    if request.htmx:
        return render(request, "playground/playground_run.html#results", context)
    return render(request, "playground/playground_run.html", context)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def result_to_dataset(request: HttpRequest, run_id: int, result_id: int) -> HttpResponse:
    run = selectors.playground_run_get(project=request.project, run_id=run_id)
    result = selectors.playground_result_get(run=run, result_id=result_id)
    datasets = list(dataset_selectors.dataset_list(project=request.project))
    form = ResultToDatasetForm(
        request.POST or None,
        datasets=datasets,
        initial={
            "expected": result.output,
            "dataset": request.GET.get("dataset") or (datasets[0].pk if len(datasets) == 1 else None),
        },
    )
    problem = ""
    if request.method == "POST" and form.is_valid():
        dataset = dataset_selectors.dataset_get(project=request.project, dataset_id=form.cleaned_data["dataset"])
        try:
            version = services.playground_result_to_dataset(
                result=result,
                dataset=dataset,
                actor=request.user,
                expected=form.cleaned_data["expected"],
                message=form.cleaned_data["message"],
            )
        except (services.PlaygroundError, DatasetError) as exc:
            problem = str(exc)
        else:
            url = reverse("datasets:version", args=[request.project.slug, dataset.pk, version.number])
            messages.success(
                request,
                format_html('Added a row to {} as <a href="{}">v{}</a> (row {}).', dataset.name, url, version.number,
                            version.row_count),
            )  # fmt: skip
            return redirect("playground:run", project_slug=request.project.slug, run_id=run.pk)
    context = {
        "run": run,
        "result": result,
        "form": form,
        "datasets": datasets,
        "problem": problem,
        "metadata": services.playground_row_metadata(result),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "playground/result_to_dataset.html", context, status=status)


@require_POST
@project_role_required(Role.EDITOR)
def result_continue(request: HttpRequest, run_id: int, result_id: int) -> HttpResponse:
    """The next turn of a result's conversation: typed tool answers and/or the next user message."""
    run = selectors.playground_run_get(project=request.project, run_id=run_id)
    result = selectors.playground_result_get(run=run, result_id=result_id)
    answers = {call["id"]: request.POST.get(f"tool-{call['id']}", "") for call in result.tool_calls}
    try:
        follow_up = services.playground_result_continue(
            result=result, actor=request.user, text=request.POST.get("text", ""), tool_answers=answers
        )
    except services.PlaygroundError as exc:
        context = _run_context(run)
        context.update(continue_problem=str(exc), continue_result=result.pk)
        return render(request, "playground/playground_run.html", context, status=400)
    return redirect("playground:run", project_slug=request.project.slug, run_id=follow_up.pk)
