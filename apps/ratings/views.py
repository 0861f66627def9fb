from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import project_role_required
from apps.core.spreadsheet import csv_download
from apps.experiments import selectors as experiment_selectors
from apps.experiments.models import Cell
from apps.ratings import charts, exports, selectors, services
from apps.ratings.forms import LinkForm, QueueForm, RatingDefinitionForm, ThresholdForm
from apps.ratings.models import QueueKind
from apps.ratings.summary import experiment_rating_summary
from apps.reviews import selectors as review_selectors


def _experiment(request: HttpRequest, experiment_id: int):
    return experiment_selectors.experiment_get(project=request.project, experiment_id=experiment_id)


def _int(raw: str | None, default: int = 1) -> int:
    try:
        return max(1, int(raw or default))
    except ValueError:
        return default


# --- comparison ---------------------------------------------------------------------------------

FILTERS = [("", "All items"), ("disagree", "Variants disagree"), ("failed", "Failed cells"),
           ("low", "Low scores"), ("unrated", "Not rated by me")]  # fmt: skip


@require_GET
@project_role_required(Role.VIEWER)
def compare(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment(request, experiment_id)
    only = request.GET.get("only", "")
    only = only if only in dict(FILTERS) else ""
    sort = request.GET.get("sort", "")
    page = _int(request.GET.get("page"))
    rows, total = selectors.comparison_rows(experiment=experiment, user=request.user, only=only, sort=sort, page=page)
    context = {
        "experiment": experiment,
        "variants": selectors.variants_of(experiment=experiment),
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // 20)),
        "only": only,
        "sort": sort,
        "filters": FILTERS,
        "evaluator_names": list(experiment.evaluators.values_list("name", flat=True)),
        "definition": services.form_definition(experiment),
        "can_rate": request.membership.has_role(Role.EDITOR),
    }
    template = (
        "ratings/compare.html#items" if request.htmx and request.GET.get("part") == "items" else "ratings/compare.html"
    )
    return render(request, template, context)


@require_POST
@project_role_required(Role.EDITOR)
def rate_cell(request: HttpRequest, experiment_id: int, cell_id: int) -> HttpResponse:
    experiment = _experiment(request, experiment_id)
    cell = Cell.objects.filter(experiment=experiment, pk=cell_id).select_related("item", "variant").first()
    if cell is None:
        raise Http404("No such output in this experiment.")
    data = {key: request.POST.getlist(key) if key == "labels" else request.POST.get(key) for key in request.POST}
    error = ""
    try:
        services.rating_submit(cell=cell, rater=request.user, data=data, comment=request.POST.get("comment", ""))
    except services.RatingError as exc:
        error = str(exc)
    if request.htmx:
        compare_cell = _compare_cell(cell, request.user)
        context = {
            "experiment": experiment,
            "c": compare_cell,
            "definition": services.form_definition(experiment),
            "can_rate": True,
            "error": error,
        }
        return render(request, "ratings/compare.html#cell", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Rating saved.")
    return redirect(request.POST.get("next") or f"{request.path.rsplit('/cells/', 1)[0]}/compare/")


def _compare_cell(cell: Cell, user) -> selectors.CompareCell:
    ratings = list(cell.ratings.all())
    mine = next((r for r in ratings if r.rater_id == user.pk), None)
    return selectors.CompareCell(
        cell, list(cell.scores.select_related("evaluator")), my_rating=mine,
        others=[r for r in ratings if r.rater_id != user.pk] if mine else [],
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def rating_form_edit(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment(request, experiment_id)
    if request.method == "POST":
        form = RatingDefinitionForm(request.POST)
        if form.is_valid():
            try:
                services.rating_form_save(experiment=experiment, definition=form.definition(), actor=request.user)
            except services.RatingError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Rating form saved.")
                return redirect("ratings:compare", project_slug=request.project.slug, experiment_id=experiment.pk)
    else:
        form = RatingDefinitionForm.from_definition(services.form_definition(experiment))
    return render(
        request,
        "ratings/rating_form.html",
        {"experiment": experiment, "form": form},
        status=400 if form.errors else 200,
    )


# --- statistics ---------------------------------------------------------------------------------


@require_GET
@project_role_required(Role.VIEWER)
def stats_page(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment(request, experiment_id)
    summary = experiment_rating_summary(experiment=experiment)
    context = {
        "experiment": experiment,
        "summary": summary,
        "charts": charts.all_charts(summary, selectors.cost_per_output(experiment=experiment)),
        "queues": selectors.queue_list(experiment=experiment),
        "can_edit": request.membership.has_role(Role.EDITOR),
    }
    return render(request, "ratings/stats.html", context)


@require_GET
@project_role_required(Role.VIEWER)
def summary_json(request: HttpRequest, experiment_id: int) -> JsonResponse:
    experiment = _experiment(request, experiment_id)
    return JsonResponse(experiment_rating_summary(experiment=experiment))


# --- annotation queues --------------------------------------------------------------------------


def _rater_choices(project) -> list[tuple[int, str]]:
    members = Membership.objects.filter(project=project, role__in=[Role.EDITOR, Role.REVIEWER, Role.ADMIN])
    return [(m.user_id, m.user.get_username()) for m in members.select_related("user").order_by("user__username")]


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def queue_create(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment(request, experiment_id)
    variant_choices = [(v.pk, v.name) for v in selectors.variants_of(experiment=experiment)]
    form = QueueForm(
        request.POST or None, variant_choices=variant_choices, rater_choices=_rater_choices(request.project)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            queue = services.queue_create(
                experiment=experiment,
                name=data["name"],
                kind=data["kind"],
                variant_ids=data["variants"],
                raters_per_item=data["raters_per_item"],
                rater_ids=data["raters"],
                actor=request.user,
            )
        except services.RatingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Queue “{queue.name}” made with {queue.items.count()} items.")
            return redirect("ratings:stats", project_slug=request.project.slug, experiment_id=experiment.pk)
    return render(
        request,
        "ratings/queue_create.html",
        {"experiment": experiment, "form": form},
        status=400 if form.errors else 200,
    )


@require_GET
@project_role_required(Role.VIEWER)
def my_queues(request: HttpRequest) -> HttpResponse:
    context = {
        "queues": selectors.my_queues(project=request.project, user=request.user),
        "experiments": experiment_selectors.experiment_list(project=request.project)[:50],
        "policies": review_selectors.policy_list(project=request.project),
    }
    return render(request, "ratings/my_queues.html", context)


def _work_context(request: HttpRequest, queue, **extra: Any) -> dict[str, Any]:
    assignment = selectors.next_assignment(queue=queue, rater=request.user)
    return {
        "queue": queue,
        "progress": selectors.rater_progress(queue=queue, rater=request.user),
        "blind": selectors.blind_item(assignment=assignment) if assignment else None,
        "definition": services.form_definition(queue.experiment),
        **extra,
    }


@require_GET
@project_role_required(Role.EDITOR)
def queue_work(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The rater's own queue, one blind item at a time. Nothing here names a variant, a cell or the experiment."""
    queue = selectors.queue_get(project=request.project, queue_id=queue_id)
    return render(request, "ratings/queue_work.html", _work_context(request, queue))


@require_POST
@project_role_required(Role.EDITOR)
def queue_claim(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.queue_get(project=request.project, queue_id=queue_id)
    try:
        taken = services.queue_claim(queue=queue, rater=request.user)
    except services.RatingError as exc:
        messages.error(request, str(exc))
    else:
        if taken:
            messages.success(request, f"{taken} more item{'s' if taken != 1 else ''} in your queue.")
        else:
            messages.info(request, "Every item has all the raters it needs.")
    return redirect("ratings:work", project_slug=request.project.slug, queue_id=queue.pk)


@require_POST
@project_role_required(Role.EDITOR)
def queue_submit(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.queue_get(project=request.project, queue_id=queue_id)
    token = request.POST.get("token", "")
    error = ""
    try:
        if queue.kind == QueueKind.PAIRWISE:
            judgement = services.judgement_submit(
                queue=queue, token=token, rater=request.user, choice=request.POST.get("choice", ""),
                reason=request.POST.get("reason", ""),
            )  # fmt: skip
            assignment = judgement.assignment
        else:
            data = {
                key: request.POST.getlist(key) if key == "labels" else request.POST.get(key) for key in request.POST
            }
            rating = services.queue_rating_submit(
                queue=queue, token=token, rater=request.user, data=data, comment=request.POST.get("comment", "")
            )
            assignment = rating.assignment
    except services.RatingError as exc:
        error = str(exc)
    if error:
        context = _work_context(request, queue, error=error)
        template = "ratings/queue_work.html#work" if request.htmx else "ratings/queue_work.html"
        return render(request, template, context, status=400)
    previous = selectors.after_submit(assignment=assignment)
    context = _work_context(request, queue, previous=previous)
    if request.htmx:
        return render(request, "ratings/queue_work.html#work", context)
    return render(request, "ratings/queue_work.html", context)


# --- exports ------------------------------------------------------------------------------------


def _download(rows, filename: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@project_role_required(Role.EDITOR)
def export(request: HttpRequest, experiment_id: int, kind: str) -> StreamingHttpResponse:
    experiment = _experiment(request, experiment_id)
    if kind == "ratings.csv":
        return csv_download(exports.rating_rows(experiment=experiment), f"experiment-{experiment.pk}-ratings.csv")
    if kind == "judgements.csv":
        return csv_download(exports.judgement_rows(experiment=experiment), f"experiment-{experiment.pk}-judgements.csv")
    if kind == "preferences.jsonl":
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in exports.preference_records(experiment=experiment))
        return _download(lines, f"experiment-{experiment.pk}-preferences.jsonl", "application/jsonl")
    if kind == "finetune.jsonl":
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in exports.finetune_records(experiment=experiment))
        return _download(lines, f"experiment-{experiment.pk}-finetune.jsonl", "application/jsonl")
    raise Http404("No such export.")


# --- evidence -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def review_link(request: HttpRequest, review_id: int) -> HttpResponse:
    review = review_selectors.review_get(project=request.project, pk=review_id)
    experiments = experiment_selectors.experiment_list(project=request.project)
    choices = [(e.pk, e.name) for e in experiments]
    initial = {"experiment": request.GET.get("experiment")}
    form = LinkForm(request.POST or None, experiment_choices=choices, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        experiment = experiment_selectors.experiment_get(project=request.project, experiment_id=data["experiment"])
        variants = {v.name: v for v in experiment.variants.all()}
        try:
            for key in ("candidate", "baseline"):
                if data[key] and data[key] not in variants:
                    raise services.RatingError(f"{experiment.name} has no variant named {data[key]!r}.")
            services.experiment_link_create(
                review=review,
                experiment=experiment,
                actor=request.user,
                candidate=variants.get(data["candidate"]),
                baseline=variants.get(data["baseline"]),
            )
        except services.RatingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{experiment.name} is now evidence on this review.")
            return redirect("reviews:detail", project_slug=request.project.slug, pk=review.pk)
    return render(
        request, "ratings/review_link.html", {"review": review, "form": form}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def policy_thresholds(request: HttpRequest, label_name: str) -> HttpResponse:
    policy = review_selectors.policy_for_label(project_id=request.project.pk, label_name=label_name)
    if policy is None:
        raise Http404("No release policy for that label.")
    form = ThresholdForm(request.POST or None, initial=policy.evidence_rules or {})
    if request.method == "POST" and form.is_valid():
        try:
            services.evidence_rules_save(policy=policy, rules=form.cleaned_data, actor=request.user)
        except services.RatingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Evidence thresholds of {policy.label_name} saved.")
            return redirect("reviews:policies", project_slug=request.project.slug)
    return render(
        request, "ratings/thresholds.html", {"policy": policy, "form": form}, status=400 if form.errors else 200
    )
