"""The playground: run a prompt (saved or not) against endpoints, watch the results, keep one as a dataset row."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.datasets import selectors as dataset_selectors
from apps.datasets.services import DatasetError
from apps.playground import selectors, services
from apps.playground.forms import ResultToDatasetForm, VariableProblem, variable_rows, variable_values
from apps.prompts import selectors as prompt_selectors
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
        config=version.config if version else {},
        variable_specs=specs,
        project=project,  # a draft's includes resolve in the project, to where their labels point now
    )


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
    endpoints = list(provider_selectors.endpoint_list(project=request.project, active_only=True))
    context: dict[str, Any] = {
        "prompt": prompt,
        "version": version,
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
            rows=variable_rows(base.variables if base else []),
            selected=_default_selection(endpoints),
        )
        return render(request, "playground/playground.html", context)

    context.update(
        kind=version.kind if version else (params.get("kind") or "text"),
        template=params.get("template", ""),
        chat_messages=_posted_messages(params),
        selected=_selected_ids(params),
    )
    try:
        content = _posted_content(params, version, project=request.project)
    except ContentProblem as exc:
        context.update(problem=str(exc), rows=variable_rows(version.variables if version else [], params))
        return _playground_answer(request, context, status=400)
    context["rows"] = variable_rows(content.variables, params)
    if params.get("intent") == "refresh":
        return render(request, "playground/playground.html#variables", context)
    try:
        values = variable_values(content.variables, params)
        chosen = provider_selectors.endpoints_by_ids(project=request.project, ids=context["selected"])
        run = services.playground_run_create(
            project=request.project,
            actor=request.user,
            content=content,
            variables=values,
            endpoints=chosen,
            version=version if version is not None and version.content_hash == content.hash() else None,
        )
    except (VariableProblem, services.PlaygroundError) as exc:
        context["problem"] = str(exc)
        return _playground_answer(request, context, status=400)
    if request.htmx:
        response = render(request, "playground/playground_run.html#results", _run_context(run))
        response.write('<div id="problem" class="mt-3" hx-swap-oob="true"></div>')
        return response
    return redirect("playground:run", project_slug=request.project.slug, run_id=run.pk)


def _playground_answer(request: HttpRequest, context: dict[str, Any], *, status: int) -> HttpResponse:
    if request.htmx:
        # The problem replaces the message box, and the form keeps everything typed.
        response = render(request, "playground/playground.html#problem", context)
        response["HX-Retarget"] = "#problem"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "playground/playground.html", context, status=status)


def _run_context(run) -> dict[str, Any]:
    results = list(run.results.all())
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
