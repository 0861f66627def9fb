from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import Forbidden, project_role_required
from apps.datasets import checking, exporting, import_jobs, importing, quality, selectors, services
from apps.datasets.forms import ExportForm, RowForm, UploadForm
from apps.datasets.models import DatasetVersion, ImportStatus
from apps.prompts import selectors as prompt_selectors
from apps.prompts.content import content_of
from apps.prompts.sandbox import TemplateProblem

PER_PAGE = 50


def _version(request: HttpRequest, dataset_id: int, number: int) -> DatasetVersion:
    dataset = selectors.dataset_get(project=request.project, dataset_id=dataset_id)
    return selectors.version_get(dataset=dataset, number=number)


def _version_url(version: DatasetVersion, page: int | None = None) -> str:
    url = reverse("datasets:version", args=[version.dataset.project.slug, version.dataset_id, version.number])
    return f"{url}?page={page}" if page and page > 1 else url


def _go(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# --- datasets ---------------------------------------------------------------------------------------


@require_GET
@project_role_required(Role.VIEWER)
def dataset_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    context = {
        "dataset_list": selectors.dataset_list(project=request.project, query=query),
        "query": query,
        "import_list": selectors.import_job_list(project=request.project, user=request.user),
    }
    return render(request, "datasets/dataset_list.html", context)


@require_GET
@project_role_required(Role.VIEWER)
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.dataset_get(project=request.project, dataset_id=dataset_id)
    newest = selectors.version_newest(dataset=dataset)
    if newest is not None:
        return redirect(_version_url(newest))
    return render(request, "datasets/dataset_empty.html", {"dataset": dataset})


# --- import ---------------------------------------------------------------------------------------


# Room for the form's other fields and the multipart framing around the file.
_FORM_OVERHEAD_BYTES = 64 * 1024


@csrf_exempt  # the CSRF check is done below, once the size is known to be acceptable
def import_upload(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Refuse an upload that declares more than DATASET_MAX_UPLOAD_MB before reading a byte of it."""
    if request.method == "POST":
        limit = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + _FORM_OVERHEAD_BYTES:
            return _upload_too_large(request, *args, declared=declared, **kwargs)
    return _import_upload(request, *args, **kwargs)


@project_role_required(Role.EDITOR)
def _upload_too_large(request: HttpRequest, declared: int) -> HttpResponse:
    form = UploadForm(datasets=selectors.dataset_list(project=request.project))
    form.errors["file"] = form.error_class(
        [
            f"The file is about {declared / 1024 / 1024:.1f} MB; the limit is {settings.DATASET_MAX_UPLOAD_MB} MB "
            "(DATASET_MAX_UPLOAD_MB). Nothing was uploaded."
        ]
    )
    return render(request, "datasets/import_upload.html", {"form": form}, status=413)


@csrf_protect
@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def _import_upload(request: HttpRequest) -> HttpResponse:
    datasets = selectors.dataset_list(project=request.project)
    initial = {"dataset": request.GET.get("dataset")} if request.GET.get("dataset") else None
    form = UploadForm(request.POST or None, request.FILES or None, datasets=datasets, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = import_jobs.import_upload(
                project=request.project,
                actor=request.user,
                uploaded=data["file"],
                dataset=data["dataset"],
                dataset_name=data["name"],
            )
        except services.DatasetError as exc:
            form.add_error("file" if "file" in str(exc).lower() else "name", str(exc))
        else:
            return redirect("datasets:import_map", project_slug=request.project.slug, token=job.token)
    status = 400 if request.method == "POST" else 200
    return render(request, "datasets/import_upload.html", {"form": form}, status=status)


def _mapping_rows(table: importing.Table, mapping: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {"index": i, "name": c, "role": mapping[c]["role"], "type": mapping[c]["type"]}
        for i, c in enumerate(table.columns)
    ]


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def import_map(request: HttpRequest, token: str) -> HttpResponse:
    job = selectors.import_job_get(project=request.project, user=request.user, token=token)
    if job.status != ImportStatus.UPLOADED:
        return render(request, "datasets/import_status.html", _status_context(job))
    if request.method == "POST" and request.POST.get("format") and request.POST["format"] != job.file_format:
        import_jobs.import_set_format(job=job, fmt=request.POST["format"])
    context: dict[str, Any] = {
        "job": job,
        "formats": importing.FORMAT_NAMES,
        "roles": importing.ROLES,
        "types": importing.TYPES,
        "large": import_jobs.import_is_large(job),
    }
    try:
        table = import_jobs.import_read(job=job, preview=True)
    except importing.ImportProblem as exc:
        context["problem"] = str(exc)
        return render(request, "datasets/import_map.html", context, status=400 if request.method == "POST" else 200)
    mapping = importing.guess_mapping(table)
    if request.method == "POST" and request.POST.get("intent") in ("preview", "import"):
        mapping = importing.mapping_from_post(table.columns, request.POST)
    context.update(
        {
            "table": table,
            "preview_rows": [["" if v is importing.MISSING else v for v in row] for row in table.rows[:10]],
            "mapping_rows": _mapping_rows(table, mapping),
            "message": request.POST.get("message", ""),
        }
    )
    intent = request.POST.get("intent") if request.method == "POST" else ""
    if intent in ("preview", "import"):
        try:
            mapped = list(importing.build_records(_head(table, 10), mapping))
        except importing.ImportProblem as exc:
            context["mapping_problem"] = str(exc)
        else:
            context["mapped_preview"] = mapped
        if intent == "import" and "mapping_problem" not in context:
            try:
                job = import_jobs.import_start(
                    job=job, mapping=mapping, message=request.POST.get("message", ""), actor=request.user
                )
            except (services.DatasetError, importing.ImportProblem) as exc:
                context["mapping_problem"] = str(exc)
            else:
                if job.status == ImportStatus.DONE:
                    messages.success(request, f"Imported {job.version.row_count:,} rows as v{job.version.number}.")
                    return _go(request, _version_url(job.version))
                return _go(request, reverse("datasets:import_status", args=[request.project.slug, job.token]))
        if request.htmx:
            return render(request, "datasets/import_map.html#mapped", context, status=200)
    return render(request, "datasets/import_map.html", context)


def _head(table: importing.Table, rows: int) -> importing.Table:
    return importing.Table(columns=table.columns, rows=table.rows[:rows], fmt=table.fmt)


def _status_context(job) -> dict[str, Any]:
    return {"job": job, "progress": import_jobs.import_progress(job)}


@require_GET
@project_role_required(Role.EDITOR)
def import_status(request: HttpRequest, token: str) -> HttpResponse:
    job = selectors.import_job_get(project=request.project, user=request.user, token=token)
    if job.status == ImportStatus.UPLOADED:
        return redirect("datasets:import_map", project_slug=request.project.slug, token=token)
    if request.htmx and job.status == ImportStatus.DONE:
        messages.success(request, f"Imported {job.version.row_count:,} rows as v{job.version.number}.")
        return _go(request, _version_url(job.version))
    template = "datasets/import_status.html#status" if request.htmx else "datasets/import_status.html"
    return render(request, template, _status_context(job))


@require_POST
@project_role_required(Role.EDITOR)
def import_cancel(request: HttpRequest, token: str) -> HttpResponse:
    job = selectors.import_job_get(project=request.project, user=request.user, token=token)
    if job.status == ImportStatus.UPLOADED:
        import_jobs.import_discard(job=job)
        messages.info(request, f"Discarded the upload of {job.filename}.")
    return redirect("datasets:list", project_slug=request.project.slug)


# --- a version and its rows -------------------------------------------------------------------------


def _version_context(request: HttpRequest, version: DatasetVersion) -> dict[str, Any]:
    newest = selectors.version_newest(dataset=version.dataset)
    return {
        "dataset": version.dataset,
        "version": version,
        "newest": newest,
        "is_newest": newest is not None and newest.pk == version.pk,
        "can_edit": request.membership.has_role(Role.EDITOR),
        "version_list": selectors.version_list(dataset=version.dataset)[:30],
    }


def _row_dicts(version: DatasetVersion, page_rows) -> list[dict[str, Any]]:
    return [
        {
            "position": position,
            "number": position + 1,
            "inputs": [{"missing": c not in item.input, "value": item.input.get(c)} for c in version.input_columns],
            "extra": {k: v for k, v in item.input.items() if k not in version.input_columns},
            "expected": item.expected,
            "metadata": item.metadata,
        }
        for position, item in page_rows
    ]


@require_GET
@project_role_required(Role.VIEWER)
def version_detail(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    paginator = Paginator(range(version.row_count), PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = _row_dicts(version, selectors.version_items_page(version=version, page=page.number, per_page=PER_PAGE))
    context = {**_version_context(request, version), "page": page, "rows": rows, "tab": "rows"}
    editing = request.GET.get("edit")
    if editing and editing.isdigit() and context["is_newest"] and context["can_edit"]:
        for row in rows:
            if row["position"] == int(editing):
                row.update(_form_row(version, row["position"], _row_form(version, row["position"])))
    return render(request, "datasets/version_detail.html", context)


def _row_form(version: DatasetVersion, position: int | None, data=None) -> RowForm:
    if position is None:
        first = selectors.version_items_page(version=version, page=1, per_page=1)
        like = first[0][1].as_record() if first else None
        like = {"input": like["input"], "expected": like["expected"], "metadata": {}} if like else None
        return RowForm(data, columns=version.input_columns, like=like)
    record = selectors.version_item_at(version=version, position=position).as_record()
    initial = RowForm.initial_for(record, version.input_columns)
    return RowForm(data, columns=version.input_columns, like=record, initial=initial)


def _form_row(version: DatasetVersion, position: int, form: RowForm, problem: str = "") -> dict[str, Any]:
    cells = [
        {"column": column, "name": f"in-{i}", "value": form[f"in-{i}"].value()}
        for i, column in enumerate(version.input_columns)
    ]
    return {"position": position, "number": position + 1, "form": form, "cells": cells, "problem": problem}


def _check_editable(request: HttpRequest, version: DatasetVersion) -> None:
    newest = selectors.version_newest(dataset=version.dataset)
    if newest.pk != version.pk:
        raise Http404(f"Only the newest version (v{newest.number}) can be edited.")


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def row_edit(request: HttpRequest, dataset_id: int, number: int, position: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    page = position // PER_PAGE + 1
    if request.method == "GET":
        if not request.htmx:
            return redirect(f"{_version_url(version)}?page={page}&edit={position}#row-{position + 1}")
        _check_editable(request, version)
        form = _row_form(version, position)
        row = _form_row(version, position, form)
        context = {**_version_context(request, version), "row": row}
        return render(request, "datasets/version_detail.html#row_form", context)
    form = _row_form(version, position, data=request.POST)
    problem = ""
    if form.is_valid():
        try:
            new = services.dataset_version_edit(
                version=version,
                actor=request.user,
                message=form.cleaned_data["message"] or f"Edited row {position + 1}",
                replace={position: form.cleaned_data["record"]},
            )
        except services.DatasetError as exc:
            problem = str(exc)
        else:
            messages.success(request, f"Saved v{new.number}: {new.message}")
            return _go(request, _version_url(new, page))
    row = _form_row(version, position, form, problem)
    context = {**_version_context(request, version), "row": row}
    return render(request, "datasets/version_detail.html#row_form", context, status=400)


@require_POST
@project_role_required(Role.EDITOR)
def row_delete(request: HttpRequest, dataset_id: int, number: int, position: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    try:
        new = services.dataset_version_edit(
            version=version,
            actor=request.user,
            message=request.POST.get("message") or f"Deleted row {position + 1}",
            delete=[position],
        )
    except services.DatasetError as exc:
        messages.error(request, str(exc))
        return _go(request, _version_url(version, position // PER_PAGE + 1))
    messages.success(request, f"Saved v{new.number}: {new.message}")
    return _go(request, _version_url(new, min(position, new.row_count - 1) // PER_PAGE + 1))


@require_POST
@project_role_required(Role.EDITOR)
def row_add(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    form = _row_form(version, None, data=request.POST)
    problem = ""
    if form.is_valid():
        record = form.cleaned_data["record"]
        if not record["input"]:
            problem = "Fill in at least one input."
        else:
            try:
                new = services.dataset_version_edit(
                    version=version,
                    actor=request.user,
                    message=form.cleaned_data["message"] or "Added a row",
                    append=[record],
                )
            except services.DatasetError as exc:
                problem = str(exc)
            else:
                messages.success(request, f"Saved v{new.number}: {new.message}")
                return _go(request, _version_url(new, (new.row_count - 1) // PER_PAGE + 1))
    context = {**_version_context(request, version), "add_form": form, "add_problem": problem, "tab": "rows"}
    return render(request, "datasets/version_detail.html#add_form", context, status=400)


# --- quality, redaction, check, export ---------------------------------------------------------------


def _quality(version: DatasetVersion, column: str) -> dict[str, Any]:
    # created_at keeps a key unique even if a database restore reuses ids.
    key = f"datasets:quality:v2:{version.pk}:{version.created_at.timestamp()}:{column}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    report = quality.build_report(
        selectors.version_records(version=version),
        input_columns=version.input_columns,
        metadata_columns=version.metadata_columns,
        has_expected=version.has_expected,
        category_column=column,
    )
    result = {
        "report": report,
        "length_chart": quality.length_figure_html(report.lengths) if report.lengths else "",
        "category_chart": quality.category_figure_html(report.categories) if report.categories else "",
    }
    report.lengths = []
    cache.set(key, result, 3600)
    return result


@require_GET
@project_role_required(Role.VIEWER)
def version_quality(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    choices = quality.category_choices(version.input_columns, version.metadata_columns, version.has_expected)
    column = request.GET.get("column") or (choices[0] if choices else "")
    if column not in choices:
        column = choices[0] if choices else ""
    context = {**_version_context(request, version), **_quality(version, column), "tab": "quality"}
    context.update({"category_choices": choices, "category_column": column})
    if request.htmx and request.GET.get("column"):
        return render(request, "datasets/version_quality.html#categories", context)
    return render(request, "datasets/version_quality.html", context)


@require_POST
@project_role_required(Role.EDITOR)
def version_redact(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    try:
        new = services.dataset_version_redact(version=version, actor=request.user)
    except services.DatasetError as exc:
        messages.error(request, str(exc))
        return redirect("datasets:quality", request.project.slug, dataset_id, number)
    messages.success(request, f"Saved v{new.number}: {new.message}")
    return redirect("datasets:quality", request.project.slug, dataset_id, new.number)


def _prompt_version(request: HttpRequest, name: str, number: str):
    prompt = prompt_selectors.prompt_get(project=request.project, name=name)
    if number and number.isdigit():
        return prompt, prompt_selectors.version_get(prompt=prompt, number=int(number))
    if number:
        found = prompt_selectors.version_by_label(prompt=prompt, label_name=number)
        if found is None:
            raise Http404(f"{prompt.name} has no label '{number}'.")
        return prompt, found
    newest = prompt_selectors.version_newest(prompt=prompt)
    if newest is None:
        raise Http404(f"{prompt.name} has no versions yet.")
    return prompt, newest


@require_GET
@project_role_required(Role.VIEWER)
def version_check(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    context = {**_version_context(request, version), "tab": "check"}
    prompts = list(prompt_selectors.prompt_list(project=request.project))
    context["prompt_list"] = prompts
    name = request.GET.get("prompt", "")
    if name:
        prompt, prompt_version = _prompt_version(request, name, request.GET.get("prompt_version", "").strip())
        context.update(
            {
                "prompt": prompt,
                "prompt_version": prompt_version,
                "prompt_versions": prompt_selectors.version_list(prompt=prompt),
                "check": checking.check_records(
                    selectors.version_records(version=version),
                    variables=prompt_version.variables,
                    input_columns=version.input_columns,
                ),
            }
        )
    template = "datasets/version_check.html#result" if request.htmx else "datasets/version_check.html"
    return render(request, template, context)


def _filename(version: DatasetVersion, ext: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", version.dataset.name).strip("-") or "dataset"
    return f"{stem}-v{version.number}.{ext}"


@require_GET
@project_role_required(Role.VIEWER)
def version_export(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    version = _version(request, dataset_id, number)
    context = {**_version_context(request, version), "tab": "export"}
    context["prompt_list"] = list(prompt_selectors.prompt_list(project=request.project))
    if "format" not in request.GET:
        context["form"] = ExportForm(initial={"format": "csv"})
        return render(request, "datasets/version_export.html", context)
    form = ExportForm(request.GET)
    context["form"] = form
    if not form.is_valid():
        return render(request, "datasets/version_export.html", context, status=400)
    fmt = form.cleaned_data["format"]
    records = selectors.version_records(version=version)
    if fmt == "csv":
        body = exporting.csv_lines(
            records,
            input_columns=version.input_columns,
            metadata_columns=version.metadata_columns,
            has_expected=version.has_expected,
        )
        response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename(version, "csv")}"'
        return response
    if fmt == "jsonl":
        response = StreamingHttpResponse(exporting.jsonl_lines(records), content_type="application/jsonl")
        response["Content-Disposition"] = f'attachment; filename="{_filename(version, "jsonl")}"'
        return response
    problem = _chat_problem(request, version, form.cleaned_data)
    if isinstance(problem, str):
        context["problem"] = problem
        return render(request, "datasets/version_export.html", context, status=400)
    content = problem
    response = StreamingHttpResponse(exporting.chat_lines(records, content), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{_filename(version, "chat.jsonl")}"'
    return response


def _chat_problem(request: HttpRequest, version: DatasetVersion, data: dict[str, Any]):
    """The prompt content to render with, or a message saying why the export cannot run."""
    if not data.get("prompt"):
        return "Choose the prompt whose template renders each row."
    prompt, prompt_version = _prompt_version(
        request, data["prompt"], str(data["prompt_version"]) if data.get("prompt_version") else ""
    )
    check = checking.check_records(
        selectors.version_records(version=version),
        variables=prompt_version.variables,
        input_columns=version.input_columns,
    )
    if not check.ok:
        row, problems = check.row_problems[0]
        return (
            f"{check.bad_rows:,} rows do not fit {prompt.name} v{prompt_version.number}; row {row}: "
            f"{'; '.join(problems)}. See “Check against a prompt”."
        )
    missing = [r for r, rec in enumerate(selectors.version_records(version=version), 1) if rec["expected"] is None]
    if missing:
        shown = ", ".join(str(r) for r in missing[:10])
        return f"{len(missing):,} rows have no expected output for the assistant message (rows {shown})."
    content = content_of(prompt_version)
    first = next(selectors.version_records(version=version), None)
    if first is not None:
        try:
            exporting.chat_example(content, first)
        except TemplateProblem as exc:
            return f"Row 1 does not render: {exc}"
    return content


@require_http_methods(["GET", "POST"])
@project_role_required(Role.VIEWER)
def version_variants(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """Counterfactual pairs along an attribute, or perturbed copies, as a new version (POST needs an editor)."""
    from apps.datasets import counterfactual

    version = _version(request, dataset_id, number)
    context = {**_version_context(request, version), "tab": "variants", "problem": ""}
    try:
        context["lexicons"] = sorted(counterfactual.lexicons(request.project.slug).values(), key=lambda x: x.attribute)
    except counterfactual.LexiconError as exc:
        context["lexicons"], context["problem"] = [], f"A team lexicon cannot be read: {exc}"
    context["perturbations"] = counterfactual.PERTURBATIONS
    if request.method == "GET":
        return render(request, "datasets/version_variants.html", context)
    if not request.membership.has_role(Role.EDITOR):
        raise Forbidden("Saving a version needs the editor role.")
    columns = request.POST.getlist("columns")
    try:
        if request.POST.get("kind") == "perturbation":
            kinds = request.POST.getlist("perturbations")
            paraphrase = counterfactual.paraphraser_for(request.project, None) if "paraphrase" in kinds else None
            seed = int(request.POST.get("seed") or 0)
            new = services.dataset_version_perturb(
                version=version, actor=request.user, kinds=kinds, columns=columns, seed=seed, paraphrase=paraphrase
            )
        else:
            attribute, _, pair = request.POST.get("swap", "").partition("|")
            values = tuple(pair.split("|", 1)) if "|" in pair else None
            new = services.dataset_version_counterfactual(
                version=version, actor=request.user, attribute=attribute, columns=columns, values=values
            )
    except ValueError:
        context["problem"] = "The seed must be a whole number."
        return render(request, "datasets/version_variants.html", context, status=400)
    except (services.DatasetError, counterfactual.LexiconError) as exc:
        context["problem"] = str(exc)
        return render(request, "datasets/version_variants.html", context, status=400)
    messages.success(request, f"Saved v{new.number}: {new.message}")
    return redirect("datasets:version", request.project.slug, dataset_id, new.number)
