from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import normalize_newlines
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.prompts import includes, merge, move_links, page_panels, selectors, services, version_actions
from apps.prompts.content import (
    Content,
    ContentProblem,
    build_content,
    content_of,
    editor_filters,
    sample_preview,
)
from apps.prompts.content import template_check as check_source
from apps.prompts.diff import content_diff
from apps.prompts.forms import (
    EditorForm,
    MessageFormSet,
    PromptCreateForm,
    PromptMetaForm,
    config_from_form,
    config_to_form,
    messages_from_formset,
    sample_as_text,
    variable_specs_from_post,
)
from apps.prompts.models import PromptKind, PromptVersion
from apps.prompts.sandbox import VARIABLE_TYPES

_CONFIG_FIELDS = {"model", "temperature", "max_tokens", "top_p", "stop", "response_format", "response_schema", "extra"}


@require_GET
@project_role_required(Role.VIEWER)
def prompt_list(request: HttpRequest) -> HttpResponse:
    query, tag = request.GET.get("q", "").strip(), request.GET.get("tag", "").strip()
    context = {
        "prompt_list": selectors.prompt_list(project=request.project, query=query, tag=tag),
        "tag_list": selectors.tag_list(project=request.project),
        "query": query,
        "active_tag": tag,
    }
    template = "prompts/prompt_list.html#results" if request.htmx else "prompts/prompt_list.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def prompt_create(request: HttpRequest) -> HttpResponse:
    form = PromptCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            prompt = services.prompt_create(
                project=request.project,
                name=data["name"],
                description=data["description"],
                tags=data["tags"],
                actor=request.user,
            )
        except services.PromptError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Prompt {prompt.name} created. Write its first version.")
            url = reverse("prompts:edit", args=[request.project.slug, prompt.name])
            return redirect(f"{url}?kind={data['kind']}")
    return render(request, "prompts/prompt_create.html", {"form": form})


@require_GET
@project_role_required(Role.VIEWER)
def prompt_detail(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    versions = list(selectors.version_list(prompt=prompt))
    context = {
        "prompt": prompt,
        "version_list": versions,
        "newest": versions[0] if versions else None,
        "label_list": selectors.label_list(prompt=prompt),
        "history": move_links.for_moves(
            project_slug=request.project.slug, moves=selectors.label_history(prompt=prompt)[:50]
        ),
        "label_names": selectors.label_names_in_project(project=request.project),
        "panels": page_panels.for_prompt(prompt=prompt),
        **_composition_context(prompt, versions[0] if versions else None),
        "meta_form": PromptMetaForm(
            initial={"description": prompt.description, "tags": ", ".join(t.name for t in prompt.tags.all())}
        ),
    }
    return render(request, "prompts/prompt_detail.html", context)


def _composition_context(prompt, newest: PromptVersion | None) -> dict[str, Any]:
    """What the newest version includes, and every prompt and label that includes this one (impact analysis)."""
    dependents = includes.dependents(snippet=prompt)
    by_label: dict[str, list[includes.Dependent]] = {}
    for dependent in dependents:
        by_label.setdefault(dependent.label_name, []).append(dependent)
    groups = [
        {
            "label_name": label_name,
            "current": rows[0].current,
            "rows": rows,
            "repinnable": sum(1 for d in rows if d.newest and d.stale),
        }
        for label_name, rows in sorted(by_label.items())
    ]
    return {
        "include_pins": _pin_rows(newest) if newest else [],
        "dependent_groups": groups,
        "dependent_count": len({d.prompt.pk for d in dependents}),
    }


def _pin_rows(version: PromptVersion) -> list[dict[str, Any]]:
    rows = []
    for pin in includes.includes_of(version):
        now = includes.labelled_version(pin.snippet_version.prompt, pin.label_name)
        rows.append({"pin": pin, "now": now, "stale": now is not None and now.pk != pin.snippet_version_id})
    return rows


@require_POST
@project_role_required(Role.EDITOR)
def dependents_repin(request: HttpRequest, name: str) -> HttpResponse:
    """Save re-pinned versions of the prompts that include this one under a label, for review."""
    prompt = selectors.prompt_get(project=request.project, name=name)
    label_name = request.POST.get("label", "")
    try:
        done = services.dependents_repin(snippet=prompt, label_name=label_name, actor=request.user)
    except services.PromptError as exc:
        messages.error(request, str(exc))
        done = []
    saved = [f"{r.prompt.name} v{r.version.number}" for r in done if r.version]
    if saved:
        messages.success(
            request,
            f"Saved {', '.join(saved)} with {prompt.name}@{label_name} re-pinned; "
            "open each and request its release to put it up for review.",
        )
    for refused in (r for r in done if r.problem):
        messages.error(request, f"{refused.prompt.name} was not re-pinned: {refused.problem}")
    if not done and label_name:
        messages.info(request, f"No prompt that includes {prompt.name}@{label_name} needs a re-pin.")
    back = request.POST.get("next", "")
    if back.startswith(f"/p/{request.project.slug}/") and "//" not in back:
        return redirect(back)
    return redirect(reverse("prompts:detail", args=[request.project.slug, prompt.name]) + "#included-by")


@require_POST
@project_role_required(Role.EDITOR)
def snippet_extract(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """Move a piece of a version into a new snippet prompt, included where it was (a new version, for review)."""
    prompt = selectors.prompt_get(project=request.project, name=name)
    version = selectors.version_get(prompt=prompt, number=number)
    snippet_name = request.POST.get("snippet_name", "").strip()
    try:
        saved = services.snippet_extract(
            version=version, text=request.POST.get("text", ""), snippet_name=snippet_name, actor=request.user
        )
    except (services.PromptError, ContentProblem) as exc:
        context = {
            "prompt": prompt,
            "version": version,
            "newest": selectors.version_newest(prompt=prompt),
            "version_actions": version_actions.for_version(membership=request.membership, version=version),
            "variable_rows": _variable_rows(version.variables),
            "include_pins": _pin_rows(version),
            "extract_problem": str(exc),
            "extract_form": request.POST,
            **sample_preview(content_of(version)),
        }
        return render(request, "prompts/version_detail.html", context, status=400)
    messages.success(
        request,
        f"Saved the snippet {snippet_name} (v1) and {prompt.name} v{saved.number}, which includes it; "
        f"{snippet_name}'s page lists every prompt that includes it.",
    )
    return redirect("prompts:version", request.project.slug, prompt.name, saved.number)


@require_POST
@project_role_required(Role.EDITOR)
def prompt_meta(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    form = PromptMetaForm(request.POST)
    if form.is_valid():
        services.prompt_update(prompt=prompt, actor=request.user, **form.cleaned_data)
        messages.success(request, "Description and tags saved.")
    return redirect("prompts:detail", project_slug=request.project.slug, name=prompt.name)


@require_GET
@project_role_required(Role.VIEWER)
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    version = selectors.version_get(prompt=prompt, number=number)
    newest = selectors.version_newest(prompt=prompt)
    context = {
        "prompt": prompt,
        "version": version,
        "newest": newest,
        "version_actions": version_actions.for_version(membership=request.membership, version=version),
        "variable_rows": _variable_rows(version.variables),
        "include_pins": _pin_rows(version),
        **sample_preview(content_of(version)),
    }
    return render(request, "prompts/version_detail.html", context)


def _variable_rows(content_variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**spec, "sample_text": sample_as_text(spec)} for spec in content_variables]


def _editor_initial(base: PromptVersion | None, kind: str) -> tuple[EditorForm, Any, list[dict[str, Any]]]:
    if base is None:
        form = EditorForm(initial={"kind": kind, "response_format": "text"})
        initial_messages = [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
        specs: list[dict[str, Any]] = []
    else:
        form = EditorForm(
            initial={"kind": base.kind, "template": base.template, "parent": base.number, **config_to_form(base.config)}
        )
        initial_messages = base.messages or [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
        specs = base.variables
    formset = MessageFormSet(prefix="msg", initial=[{**m, "ORDER": i} for i, m in enumerate(initial_messages, start=1)])
    return form, formset, specs


def _draft(request: HttpRequest, prompt) -> tuple[EditorForm, Any, Content | None, ContentProblem | None, list[dict]]:
    """Read the editor's POST into content; a problem is returned, not raised, so the form can show it."""
    form = EditorForm(request.POST)
    formset = MessageFormSet(request.POST, prefix="msg")
    specs = variable_specs_from_post(request.POST)
    if not form.is_valid():
        return form, formset, None, ContentProblem("Check the highlighted fields."), specs
    data = form.cleaned_data
    # Browsers send textarea lines as \r\n; a version stores \n, as the API and the client write it.
    chat = messages_from_formset(formset) if formset.is_valid() else None
    try:
        content = build_content(
            kind=data["kind"],
            template=normalize_newlines(data["template"]),
            messages=[{**m, "content": normalize_newlines(m["content"])} for m in chat] if chat is not None else None,
            config=config_from_form(data),
            variable_specs=[
                {**spec, "sample": normalize_newlines(spec["sample"])} if isinstance(spec.get("sample"), str) else spec
                for spec in specs
            ],
            prompt=prompt,
        )
    except ContentProblem as exc:
        return form, formset, None, exc, specs
    return form, formset, content, None, specs


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def prompt_edit(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    newest = selectors.version_newest(prompt=prompt)
    context: dict[str, Any] = {
        "prompt": prompt,
        "newest": newest,
        "variable_types": VARIABLE_TYPES,
        "editor_filters": editor_filters(),
    }

    if request.method == "GET":
        base = newest
        if request.GET.get("from"):
            base = selectors.version_get(prompt=prompt, number=int(request.GET["from"]))
        kind = request.GET.get("kind") if request.GET.get("kind") in PromptKind.values else PromptKind.TEXT
        form, formset, specs = _editor_initial(base, kind)
        if base is not None and newest is not None and base.number != newest.number:
            form.initial["parent"] = newest.number
            messages.info(
                request, f"Editing from v{base.number}; saving makes v{newest.number + 1} on top of v{newest.number}."
            )
        context.update({"form": form, "formset": formset, "base": base, "variable_rows": _variable_rows(specs)})
        context["config_open"] = bool(base and base.config)
        if base is not None:
            context.update(sample_preview(content_of(base)))
        return render(request, "prompts/prompt_edit.html", context)

    form, formset, content, problem, specs = _draft(request, prompt)
    context.update({"form": form, "formset": formset, "problem": problem})
    context["config_open"] = bool(problem and problem.field in _CONFIG_FIELDS) or any(
        request.POST.get(name) for name in ("model", "temperature", "max_tokens", "top_p", "extra")
    )
    if content is not None:
        context["variable_rows"] = _variable_rows(content.variables)
        context.update(sample_preview(content))
    else:
        context["variable_rows"] = _variable_rows(specs)

    if request.htmx and request.POST.get("intent") == "preview":
        previous = [n for n in request.POST.get("var_names", "").split(",") if n]
        context["variables_changed"] = content is not None and previous != [v["name"] for v in content.variables]
        return render(request, "prompts/prompt_edit.html#preview", context)

    if content is not None:
        parent = form.cleaned_data.get("parent")
        merge_base = _merge_base(request, prompt, default=parent)
        if request.POST.get("intent") == "merge":
            try:
                content = _merged(prompt, merge_base=merge_base, parent=parent, draft=content)
            except ContentProblem as exc:
                content, context["problem"] = None, exc
    if content is not None:
        try:
            version = services.prompt_version_create(
                prompt=prompt,
                content=content,
                parent_number=parent,
                message=form.cleaned_data.get("message", ""),
                actor=request.user,
            )
        except services.StaleParent as exc:
            context.update(_conflict_context(exc, merge_base=merge_base, draft=content))
        except (ContentProblem, services.PromptError) as exc:
            context["problem"] = exc
        else:
            messages.success(request, f"Saved v{version.number} of {prompt.name}.")
            return redirect(
                "prompts:version", project_slug=request.project.slug, name=prompt.name, number=version.number
            )
    context["not_saved"] = context.get("problem")
    return render(request, "prompts/prompt_edit.html", context, status=409 if "conflict" in context else 400)


@require_POST
@project_role_required(Role.EDITOR)
def template_check(request: HttpRequest, name: str) -> JsonResponse:
    """The editor's check while typing: the save-time problem of one template with its line, or its variables."""
    prompt = selectors.prompt_get(project=request.project, name=name)
    source = normalize_newlines(request.POST.get("source", ""))
    return JsonResponse(check_source(source, project=request.project, prompt=prompt))


def _merge_base(request: HttpRequest, prompt, *, default: int | None) -> PromptVersion | None:
    """The version the draft was first written from: kept across conflicts in the hidden merge_base."""
    number = request.POST.get("merge_base") or default
    try:
        return selectors.version_get(prompt=prompt, number=int(number)) if number else None
    except (ValueError, Http404):
        return None


def _merged(prompt, *, merge_base: PromptVersion | None, parent: int | None, draft: Content) -> Content:
    """The draft combined with the version it is saved on top of; an overlap refuses the merge."""
    saved = selectors.version_get(prompt=prompt, number=parent) if parent else None
    if saved is None:
        return draft
    base = content_of(merge_base) if merge_base else None
    result = merge.content_merge(base=base, saved=content_of(saved), draft=draft, prompt=prompt)
    if not result.clean:
        raise ContentProblem(f"cannot merge: both edits change {result.overlaps[0].where}")
    return result.content


def _conflict_context(exc: services.StaleParent, *, merge_base: PromptVersion | None, draft: Content) -> dict[str, Any]:
    result = merge.content_merge(
        base=content_of(merge_base) if merge_base else None,
        saved=content_of(exc.newest),
        draft=draft,
        prompt=exc.newest.prompt,
    )
    context: dict[str, Any] = {
        "conflict": exc,
        "conflict_diff": content_diff(exc.newest, draft),
        "left_title": f"v{exc.newest.number} (saved)",
        "right_title": "Your draft",
        "merge_base": merge_base,
        "merge_overlaps": result.overlaps,
    }
    if result.clean:
        context["merge_diff"] = content_diff(exc.newest, result.content)
    return context


@require_GET
@project_role_required(Role.VIEWER)
def version_compare(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    versions = list(selectors.version_list(prompt=prompt))
    if not versions:
        messages.info(request, "Save a version first; there is nothing to compare yet.")
        return redirect("prompts:detail", project_slug=request.project.slug, name=prompt.name)
    try:
        right_number = int(request.GET.get("right") or versions[0].number)
        left_number = int(request.GET.get("left") or max(right_number - 1, 1))
    except ValueError:
        left_number, right_number = max(versions[0].number - 1, 1), versions[0].number
    left = selectors.version_get(prompt=prompt, number=left_number)
    right = selectors.version_get(prompt=prompt, number=right_number)
    context = {
        "prompt": prompt,
        "left": left,
        "right": right,
        "left_title": f"v{left.number}",
        "right_title": f"v{right.number}",
        "diff": content_diff(left, right),
        "version_list": versions,
    }
    return render(request, "prompts/version_compare.html", context)


@require_POST
@project_role_required(Role.EDITOR)
def label_move(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    label_name = request.POST.get("label", "").strip()
    try:
        version = selectors.version_get(prompt=prompt, number=int(request.POST.get("version", "")))
    except ValueError:
        messages.error(request, "Choose a version for the label.")
    else:
        try:
            services.label_move(
                prompt=prompt,
                label_name=label_name,
                version=version,
                actor=request.user,
                reason=request.POST.get("reason", ""),
                rollback=request.POST.get("rollback") == "1",
            )
        except services.PromptError as exc:
            messages.error(request, str(exc))
        else:
            verb = "rolled back to" if request.POST.get("rollback") == "1" else "now points at"
            messages.success(request, f"{label_name} {verb} v{version.number}.")
            stale = [d for d in includes.dependents(snippet=prompt, label_name=label_name) if d.newest and d.stale]
            if stale:
                names = ", ".join(sorted({d.prompt.name for d in stale}))
                messages.info(
                    request,
                    f"{len(stale)} prompt(s) include {prompt.name}@{label_name} and still render an older version "
                    f"({names}): re-pin them under “Included by” to put their new versions up for review.",
                )
    return redirect("prompts:detail", project_slug=request.project.slug, name=prompt.name)


@require_POST
@project_role_required(Role.EDITOR)
def label_delete(request: HttpRequest, name: str) -> HttpResponse:
    prompt = selectors.prompt_get(project=request.project, name=name)
    label_name = request.POST.get("label", "")
    try:
        services.label_delete(
            prompt=prompt, label_name=label_name, actor=request.user, reason=request.POST.get("reason", "")
        )
    except services.PromptError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Label {label_name} deleted; its history is kept.")
    return redirect("prompts:detail", project_slug=request.project.slug, name=prompt.name)
