from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.datasets.models import Dataset
from apps.traces import selectors, services
from apps.traces.models import PiiMode, TraceSettings


@require_GET
@project_role_required(Role.VIEWER)
def trace_list(request: HttpRequest) -> HttpResponse:
    project = request.project
    problem = ""
    try:
        filters = selectors.filters_from(request.GET)
        rows, next_cursor = selectors.trace_page(
            project_id=project.pk, filters=filters, cursor=request.GET.get("cursor", "")[:200], per_page=50
        )
    except selectors.FilterProblem as exc:
        problem, filters, rows, next_cursor = exc.message, selectors.TraceFilters(), [], None
    query = filters.as_query()
    context = {
        "rows": rows,
        "filters": filters,
        "problem": problem,
        "choices": selectors.filter_choices(project_id=project.pk),
        "next_url": f"?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else "",
        "first_url": f"?{urlencode(query)}",
        "paged": bool(request.GET.get("cursor")),
        "raw": request.GET,
    }
    template = "traces/trace_list.html#results" if request.htmx else "traces/trace_list.html"
    return render(request, template, context)


def _timeline(trace, spans) -> list[dict]:
    total = max((trace.end_time - trace.start_time).total_seconds(), 1e-6)
    rows = []
    for span, depth in selectors.span_tree(spans):
        offset = (span.start_time - trace.start_time).total_seconds() / total * 100
        width = max((span.end_time - span.start_time).total_seconds() / total * 100, 0.5)
        rows.append({"span": span, "depth": depth, "indent": depth * 16, "left": f"{offset:.2f}%",
                     "width": f"{min(width, 100 - offset):.2f}%"})  # fmt: skip
    return rows


@require_GET
@project_role_required(Role.VIEWER)
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = selectors.trace_get(project_id=request.project.pk, trace_id=trace_id)
    if trace is None:
        raise Http404("No such trace in this project.")
    spans = selectors.trace_spans(trace=trace)
    scores = selectors.trace_scores(trace=trace)
    scores_by_span: dict[str, list] = {}
    for score in scores:
        scores_by_span.setdefault(score.span_id, []).append(score)
    generations = [
        {"span": s, "scores": scores_by_span.get(s.span_id, []), "messages": _messages(s.input)}
        for s in spans
        if s.is_generation
    ]
    context = {
        "trace": trace,
        "timeline": _timeline(trace, spans),
        "generations": generations,
        "trace_scores": scores_by_span.get("", []),
        "datasets": Dataset.objects.filter(project=request.project).order_by("name"),
    }
    return render(request, "traces/trace_detail.html", context)


def _messages(value) -> list[dict] | None:
    """Chat messages as (role, text) for display; None when the input is not a list of messages."""
    from apps.traces.records import text_of

    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        return None
    return [{"role": str(m.get("role", "")), "text": text_of(m)} for m in value]


@require_POST
@project_role_required(Role.EDITOR)
def to_dataset(request: HttpRequest) -> HttpResponse:
    back = request.POST.get("back", "")
    back = (
        back
        if back.startswith(f"/p/{request.project.slug}/traces/")
        else reverse("traces:list", args=[request.project.slug])
    )
    span_ids = [int(v) for v in request.POST.getlist("generation") if v.isdigit()]
    dataset = Dataset.objects.filter(project=request.project, pk=request.POST.get("dataset") or 0).first()
    if dataset is None:
        messages.error(request, "Choose a dataset to add the generations to.")
        return redirect(back)
    try:
        version = services.generations_to_dataset(
            project_id=request.project.pk,
            span_ids=span_ids,
            dataset=dataset,
            actor=request.user,
            message=request.POST.get("message", "")[:500],
        )
    except services.TraceError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    messages.success(request, f"Added {len(span_ids)} generation(s) to {dataset.name} as v{version.number}.")
    return redirect("datasets:version", project_slug=request.project.slug, dataset_id=dataset.pk, number=version.number)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def trace_settings(request: HttpRequest) -> HttpResponse:
    current = TraceSettings.objects.filter(project=request.project).first() or TraceSettings(
        retention_days=settings.TRACE_RETENTION_DAYS
    )
    problem = ""
    if request.method == "POST":
        days = request.POST.get("retention_days", "").strip()
        try:
            services.trace_settings_update(
                project=request.project,
                retention_days=int(days) if days.isdigit() else 0,
                pii_mode=request.POST.get("pii_mode", ""),
                actor=request.user,
            )
        except services.TraceError as exc:
            problem = str(exc)
        else:
            messages.success(request, "Trace settings saved; ingest applies them within 10 seconds.")
            return redirect("traces:settings", project_slug=request.project.slug)
    context = {"current": current, "modes": PiiMode.choices, "problem": problem}
    return render(request, "traces/settings.html", context, status=400 if problem else 200)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.VIEWER)
def generation_explain(request: HttpRequest, trace_id: str, span_id: int) -> HttpResponse:
    """One production generation explained (occlusion, token sensitivity) on an endpoint of the project.

    The endpoint whose model matches the generation's is preselected.
    """
    from apps.experiments.models import Explanation
    from apps.experiments.probes import explain
    from apps.experiments.probes.views import explain_page
    from apps.traces.models import Span

    span = (
        Span.objects.select_related("prompt_version__prompt")
        .filter(project=request.project, trace_id=trace_id[:64], pk=span_id)
        .first()
    )
    if span is None:
        raise Http404("No such generation in this trace.")
    model = span.model.rsplit("/", 1)[-1]
    slug = request.project.slug
    context = {
        "crumbs": [(reverse("traces:list", args=[slug]), "Traces"),
                   (reverse("traces:detail", args=[slug, span.trace_id]), f"trace {span.trace_id[:12]}")],
        "subject_title": f"generation {span.name or span.span_id}",
        "inputs": span.variables or {},
        "output": span.output_text,
    }  # fmt: skip
    source_key = f"span:{span.pk}"
    return explain_page(
        request,
        subject_for=lambda endpoint: explain.subject_of_span(span, endpoint),
        latest=Explanation.objects.filter(project=request.project, source_key=source_key),
        start={"source_key": source_key},
        context=context,
        default_endpoint=lambda endpoints: next(
            (e.pk for e in endpoints if model and e.model.rsplit("/", 1)[-1] == model), None
        ),
    )
