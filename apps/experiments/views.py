from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.core import heartbeats
from apps.core.spreadsheet import csv_download
from apps.datasets import selectors as dataset_selectors
from apps.experiments import charts, comparison, experiment_links, rubrics, score_notes, selectors, services, trial
from apps.experiments.forms import EvaluatorFormSet, ExperimentForm, VariantFormSet
from apps.experiments.models import ExperimentKind, ExperimentStatus
from apps.experiments.probes import views as probe_views
from apps.prompts.models import PromptVersion
from apps.providers import selectors as provider_selectors


@require_GET
@project_role_required(Role.VIEWER)
def experiment_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiments/experiment_list.html",
        {"experiment_list": selectors.experiment_list(project=request.project)},
    )


def _initial_variants(request: HttpRequest, prompt_versions: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Variants A and B, or those the review page asks for: ?candidate=<version id>[&baseline=<version id>]
    (the baseline is A, the candidate B; a candidate alone is A). Ids of another project are ignored."""
    known = {str(pk) for pk, _ in prompt_versions}
    candidate, baseline = (request.GET.get(key) for key in ("candidate", "baseline"))
    if candidate not in known:
        return [{"name": "A"}, {"name": "B"}]
    if baseline in known and baseline != candidate:
        return [{"name": "A", "prompt_version": baseline}, {"name": "B", "prompt_version": candidate}]
    return [{"name": "A", "prompt_version": candidate}]


def _choices(project) -> dict[str, Any]:
    versions = []
    for dataset in dataset_selectors.dataset_list(project=project):
        for version in dataset_selectors.version_list(dataset=dataset):
            versions.append((version.pk, f"{dataset.name} v{version.number} ({version.row_count} rows)"))
    prompt_versions = [
        (v.pk, f"{v.prompt.name} v{v.number}")
        for v in PromptVersion.objects.filter(prompt__project=project)
        .select_related("prompt")
        .order_by("prompt__name", "-number")
    ]
    endpoints = [(e.pk, e.name) for e in provider_selectors.endpoint_list(project=project)]
    return {"dataset_versions": versions, "prompt_versions": prompt_versions, "endpoints": endpoints}


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def experiment_create(request: HttpRequest) -> HttpResponse:
    choices = _choices(request.project)
    variant_kwargs = {"prompt_versions": choices["prompt_versions"], "endpoints": choices["endpoints"]}
    evaluator_kwargs = {
        "endpoints": selectors.endpoint_ids_by_name(project=request.project),
        "judge_prompts": selectors.judge_prompt_choices(project=request.project),
    }
    data = request.POST or None
    form = ExperimentForm(data, dataset_versions=choices["dataset_versions"])
    initial_variants = _initial_variants(request, choices["prompt_versions"]) if data is None else None
    variant_formset = VariantFormSet(data, prefix="variant", form_kwargs=variant_kwargs, initial=initial_variants)
    evaluator_formset = EvaluatorFormSet(
        data, prefix="evaluator", form_kwargs=evaluator_kwargs, initial=[{}] if data is None else None
    )
    context = {
        "form": form,
        "variant_formset": variant_formset,
        "evaluator_formset": evaluator_formset,
        "evaluator_kinds": selectors.evaluator_kinds(),
        "rubric_library": rubrics.rubric_library(),
        **choices,
    }
    if request.method == "POST" and "try_row" in request.POST:
        context.update(_try_evaluator(request, variant_formset, evaluator_formset))
        if request.htmx:
            return render(request, "experiments/experiment_create.html#try", context)
        return render(request, "experiments/experiment_create.html", context)
    if request.method == "POST" and form.is_valid() and variant_formset.is_valid() and evaluator_formset.is_valid():
        try:
            experiment = services.experiment_create(
                project=request.project,
                actor=request.user,
                **services.specs_from_forms(
                    project=request.project,
                    form=form.cleaned_data,
                    variants=[f.cleaned_data for f in variant_formset.forms if f.cleaned_data],
                    evaluator_rows=[
                        f.cleaned_data
                        for f in evaluator_formset.forms
                        if f.cleaned_data.get("kind") and not f.cleaned_data.get("DELETE")
                    ],
                    actor=request.user,
                ),
            )
        except services.ExperimentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Experiment saved as a draft. Check the estimate, then start it.")
            return redirect("experiments:detail", project_slug=request.project.slug, experiment_id=experiment.pk)
    return render(request, "experiments/experiment_create.html", context)


def _try_evaluator(request: HttpRequest, variant_formset, evaluator_formset) -> dict[str, Any]:
    """Try one evaluator row (try_row) of the builder on the first rows, with the first variant."""
    try:
        index = int(request.POST["try_row"])
        evaluator_form = evaluator_formset.forms[index]
    except (ValueError, IndexError):
        return {"try_error": "That evaluator row is gone.", "try_prefix": "evaluator-x"}
    context: dict[str, Any] = {"try_prefix": evaluator_form.prefix, "try_index": index}
    if not evaluator_form.is_valid() or not evaluator_form.cleaned_data.get("kind"):
        problems = [e for errors in evaluator_form.errors.values() for e in errors]
        context["try_error"] = " ".join(problems) or "Choose the evaluator's kind first."
        return context
    variant_form = variant_formset.forms[0] if variant_formset.forms else None
    variant = variant_form.cleaned_data if variant_form is not None and variant_form.is_valid() else {}
    data = evaluator_form.cleaned_data
    try:
        context["try_rows"] = trial.evaluator_try(
            project=request.project,
            dataset_version_id=request.POST.get("dataset_version"),
            prompt_version_id=variant.get("prompt_version"),
            endpoint_id=variant.get("endpoint"),
            variant_params=variant.get("params") or {},
            kind=data["kind"],
            params=data["params"],
        )
    except trial.TrialError as exc:
        context["try_error"] = str(exc)
    return context


@require_GET
@project_role_required(Role.VIEWER)
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.experiment_get(project=request.project, experiment_id=experiment_id)
    progress = selectors.experiment_progress(experiment=experiment)
    context: dict[str, Any] = {"experiment": experiment, "progress": progress, "overall": progress.total}
    if experiment.status == ExperimentStatus.RUNNING:
        # With no live worker nothing moves: say so instead of a time-left estimate.
        context["workers"] = heartbeats.status("worker")
    if request.htmx and request.GET.get("part") == "progress":
        return render(request, "experiments/experiment_detail.html#progress", context)
    only, page = request.GET.get("only", ""), int(request.GET.get("page") or 1)
    rows, total_rows = selectors.experiment_results(experiment=experiment, page=page, only=only)
    summary = selectors.experiment_summary(experiment=experiment)
    context.update(
        {
            "variants": selectors.variant_list(experiment=experiment),
            "summary": summary,
            "rows": rows,
            "total_rows": total_rows,
            "page": page,
            "pages": max(1, -(-total_rows // 25)),
            "only": only,
            "evaluator_list": list(experiment.evaluators.all()),
            "score_notes": score_notes.for_experiment(experiment=experiment),
            "evaluator_descriptions": selectors.evaluator_descriptions(experiment=experiment),
            "experiment_links": experiment_links.for_experiment(membership=request.membership, experiment=experiment),
        }
    )
    if experiment.status == ExperimentStatus.DRAFT:
        context["missing"] = selectors.experiment_missing_variables(experiment=experiment)
        context["estimate"] = selectors.experiment_estimate(experiment=experiment)
    elif any(s.done for s in summary):
        context["charts"] = charts.experiment_charts(summary=summary, experiment=experiment)
        if experiment.kind != ExperimentKind.EVALUATION:
            context.update(probe_views.probe_context(experiment))
    if request.htmx and request.GET.get("part") == "results":
        return render(request, "experiments/experiment_detail.html#results", context)
    return render(request, "experiments/experiment_detail.html", context)


@require_GET
@project_role_required(Role.VIEWER)
def experiment_compare(request: HttpRequest) -> HttpResponse:
    """Two or more experiments on one dataset side by side; polled while one of them runs."""
    context: dict[str, Any] = {"query": _query_without(request, "part")}
    try:
        ids = [int(value) for value in request.GET.getlist("ids")]
        baseline = int(request.GET["baseline"]) if request.GET.get("baseline") else None
        experiments = comparison.experiments_for_comparison(project=request.project, ids=ids, baseline=baseline)
    except ValueError:
        context["problem"] = "Experiment ids are numbers."
        return render(request, "experiments/experiment_compare.html", context, status=400)
    except comparison.ComparisonProblem as exc:
        context["problem"] = str(exc)
        return render(request, "experiments/experiment_compare.html", context, status=400)
    context["comparison"] = comparison.experiment_comparison(
        experiments=experiments,
        evaluator=request.GET.get("evaluator", ""),
        only_changed=request.GET.get("only") == "changed",
    )
    context["only"] = request.GET.get("only", "")
    if request.htmx and request.GET.get("part") == "comparison":
        return render(request, "experiments/experiment_compare.html#comparison", context)
    return render(request, "experiments/experiment_compare.html", context)


@require_GET
@project_role_required(Role.VIEWER)
def experiment_compare_from(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The comparison of this experiment (the baseline) with the newest others on its dataset."""
    experiment = selectors.experiment_get(project=request.project, experiment_id=experiment_id)
    others = comparison.experiments_on_dataset(experiment=experiment, limit=comparison.MAX_EXPERIMENTS - 1)
    if not others:
        problem = f"No other experiment has run on {experiment.dataset_version.dataset.name} yet."
        return render(request, "experiments/experiment_compare.html", {"problem": problem}, status=404)
    query = urlencode([("ids", experiment.pk), *[("ids", other.pk) for other in others], ("baseline", experiment.pk)])
    return redirect(reverse("experiments:compare", args=[request.project.slug]) + "?" + query)


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


_ACTIONS = {
    "start": services.experiment_start,
    "pause": services.experiment_pause,
    "resume": services.experiment_resume,
    "cancel": services.experiment_cancel,
    "rerun": services.experiment_rerun_failed,
}


@require_POST
@project_role_required(Role.EDITOR)
def experiment_action(request: HttpRequest, experiment_id: int, action: str) -> HttpResponse:
    experiment = selectors.experiment_get(project=request.project, experiment_id=experiment_id)
    handler = _ACTIONS.get(action)
    if handler is None:
        messages.error(request, f"Unknown action '{action}'.")
    else:
        try:
            handler(experiment=experiment, actor=request.user)
        except services.ExperimentError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Experiment {action} done." if action != "start" else "Experiment started.")
    return redirect("experiments:detail", project_slug=request.project.slug, experiment_id=experiment.pk)


EXPORT_HEADER = [
    "cell_id", "row", "variant", "prompt", "prompt_version", "endpoint", "repeat", "status", "input", "expected",
    "output", "finish_reason", "tokens_in", "tokens_out", "cost", "latency_ms", "attempts", "error_kind", "error",
]  # fmt: skip


@require_GET
@project_role_required(Role.VIEWER)
def experiment_export(request: HttpRequest, experiment_id: int) -> StreamingHttpResponse:
    """One line per cell. Spreadsheet-safe by default; ?raw=1 leaves every cell as it is (for pandas)."""
    experiment = selectors.experiment_get(project=request.project, experiment_id=experiment_id)
    evaluator_names = list(experiment.evaluators.values_list("name", flat=True))
    variants = {
        v.pk: (v.prompt_version.prompt.name, v.prompt_version.number, v.endpoint.name)
        for v in experiment.variants.select_related("prompt_version__prompt", "endpoint")
    }
    raw = request.GET.get("raw") in ("1", "true", "yes")

    def rows():
        yield EXPORT_HEADER + [f"score:{n}" for n in evaluator_names]
        for cell in selectors.experiment_cells_for_export(experiment=experiment).iterator(chunk_size=500):
            scores = {s.evaluator.name: (s.value if not s.error else f"error: {s.error}") for s in cell.scores.all()}
            prompt, prompt_version, endpoint = variants[cell.variant_id]
            values = [
                cell.pk, cell.position + 1, cell.variant.name, prompt, prompt_version, endpoint, cell.repeat + 1,
                cell.status, cell.item.input, cell.item.expected, cell.output, cell.finish_reason, cell.tokens_in,
                cell.tokens_out, cell.cost, cell.latency_ms, cell.attempts, cell.error_kind, cell.error_message,
            ]  # fmt: skip
            yield values + [scores.get(n) for n in evaluator_names]

    suffix = "-raw" if raw else ""
    return csv_download(rows(), f"experiment-{experiment.pk}{suffix}.csv", raw=raw)
