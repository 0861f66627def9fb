"""The probe sections of the experiment page (bias, injection) and the form that starts a bias probe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required, require_role
from apps.experiments.models import Experiment, ExperimentKind


def probe_context(experiment: Experiment) -> dict[str, Any]:
    if experiment.kind == ExperimentKind.BIAS:
        from apps.experiments.probes import bias

        reports = bias.report(experiment)
        return {
            "probe_kind": "bias",
            "probe_reports": [r.as_dict() for r in reports],
            "probe_summary": bias.summary(reports),
            "probe_charts": bias.charts(reports),
            "probe_alpha": bias.ALPHA,
        }
    if experiment.kind == ExperimentKind.INJECTION:
        from apps.experiments.probes import injection

        result = injection.report(experiment)
        return {"probe_kind": "injection", "probe_report": result.as_dict(), "probe_summary": injection.summary(result)}
    return {}


def _choices(project) -> dict[str, Any]:
    from apps.datasets import selectors as dataset_selectors
    from apps.prompts.models import PromptVersion
    from apps.providers import selectors as provider_selectors
    from apps.reviews.models import ReleasePolicy

    paired = []
    for dataset in dataset_selectors.dataset_list(project=project):
        for version in dataset_selectors.version_list(dataset=dataset):
            if "pair_id" in (version.metadata_columns or []):
                paired.append((version.pk, f"{dataset.name} v{version.number} ({version.row_count} rows)"))
    prompt_versions = [
        (v.pk, f"{v.prompt.name} v{v.number}")
        for v in PromptVersion.objects.filter(prompt__project=project)
        .select_related("prompt")
        .order_by("prompt__name", "-number")
    ]
    endpoints = [(e.pk, e.name) for e in provider_selectors.endpoint_list(project=project, active_only=True)]
    policies = list(ReleasePolicy.objects.filter(project=project).prefetch_related("probe_requirements"))
    from apps.reviews.models import AcceptableUse

    statement = AcceptableUse.objects.filter(project=project).values_list("statement", flat=True).first() or ""
    return {"paired_versions": paired, "prompt_versions": prompt_versions, "endpoints": endpoints, "policies": policies,
            "acceptable_use": statement}  # fmt: skip


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@require_http_methods(["GET", "POST"])
@project_role_required(Role.VIEWER)
def probe_new(request: HttpRequest) -> HttpResponse:
    """Start a bias probe (on a counterfactual dataset version) or an injection probe (on a prompt version)."""
    from apps.datasets import selectors as dataset_selectors
    from apps.experiments import services
    from apps.experiments.probes import services as probe_services
    from apps.prompts.models import PromptVersion
    from apps.providers import selectors as provider_selectors

    context: dict[str, Any] = {**_choices(request.project), "problem": "", "form": request.POST}
    if request.method == "GET":
        return render(request, "experiments/probe_new.html", context)
    require_role(project_id=request.project.pk, actor=request.user, role=Role.EDITOR, what="Starting a probe")
    kind = request.POST.get("kind")
    prompt_version = PromptVersion.objects.filter(
        prompt__project=request.project, pk=_int(request.POST.get("prompt_version"))
    ).first()
    endpoints = provider_selectors.endpoints_by_ids(
        project=request.project, ids=[_int(request.POST.get("endpoint")) or 0]
    )
    try:
        if prompt_version is None:
            raise services.ExperimentError("Choose the prompt version to probe.")
        if not endpoints:
            raise services.ExperimentError("Choose an active model endpoint.")
        if kind == ExperimentKind.BIAS:
            version_id = _int(request.POST.get("dataset_version"))
            if version_id is None:
                raise services.ExperimentError("Choose a counterfactual dataset version.")
            experiment = probe_services.bias_probe_create(
                project=request.project, actor=request.user, prompt_version=prompt_version, endpoint=endpoints[0],
                dataset_version=dataset_selectors.version_get_by_id(project=request.project, version_id=version_id),
                positive_label=request.POST.get("positive_label", ""),
            )  # fmt: skip
        elif kind == ExperimentKind.INJECTION:
            variables = [v.strip() for v in request.POST.get("variables", "").split(",") if v.strip()]
            experiment = probe_services.injection_probe_create(
                project=request.project, actor=request.user, prompt_version=prompt_version, endpoint=endpoints[0],
                variables=variables or None,
            )  # fmt: skip
        else:
            raise services.ExperimentError("Choose a bias or an injection probe.")
    except services.ExperimentError as exc:
        context["problem"] = str(exc)
        return render(request, "experiments/probe_new.html", context, status=400)
    messages.success(request, f"Started {experiment.name}.")
    return redirect("experiments:detail", request.project.slug, experiment.pk)


@require_POST
@project_role_required(Role.ADMIN)
def probe_requirement_add(request: HttpRequest) -> HttpResponse:
    """An admin adds 'label flip rate <= x for <attribute>' or 'injection success <= x' to a release policy."""
    from apps.experiments.probes import governance
    from apps.reviews.models import ReleasePolicy

    context: dict[str, Any] = {**_choices(request.project), "problem": "", "form": request.POST}
    policy = ReleasePolicy.objects.filter(project=request.project, pk=_int(request.POST.get("policy"))).first()
    try:
        if policy is None:
            raise governance.ProbeRequirementError("Choose a release policy.")
        percent = float(request.POST.get("max_percent", ""))
        requirement = governance.probe_requirement_set(
            policy=policy, kind=request.POST.get("kind", ""), attribute=request.POST.get("attribute", ""),
            max_rate=percent / 100, actor=request.user,
        )  # fmt: skip
    except ValueError:
        context["problem"] = "The highest rate is a number of percent, such as 2."
        return render(request, "experiments/probe_new.html", context, status=400)
    except governance.ProbeRequirementError as exc:
        context["problem"] = str(exc)
        return render(request, "experiments/probe_new.html", context, status=400)
    messages.success(request, f"The {policy.label_name} policy now requires: {requirement}.")
    return redirect("experiments:probe_new", request.project.slug)


def explain_page(
    request: HttpRequest,
    *,
    subject_for: Callable[[Any], Any],
    latest: Any,
    start: dict[str, Any],
    context: dict[str, Any],
    default_endpoint: Callable[[list], int | None],
) -> HttpResponse:
    """GET shows the latest explanation of one output; POST starts a new one.

    `subject_for(endpoint)` builds what is explained (explain.subject_of_cell / subject_of_span, raising
    ExplainError with the reason); `latest` is the queryset of its explanations; `start` the extra
    arguments of explanation_start (cell= or source_key=); `default_endpoint(endpoints)` the one to
    preselect among the project's active endpoints. Used for experiment cells and, by traces, for
    production generations.
    """
    from apps.experiments.probes import explain
    from apps.experiments.probes import services as probe_services
    from apps.providers import selectors as provider_selectors

    endpoints = list(provider_selectors.endpoint_list(project=request.project, active_only=True))
    context.update({"endpoints": endpoints, "default_endpoint": default_endpoint(endpoints), "problem": "",
                    "max_words": explain.SENSITIVITY_WORDS})  # fmt: skip
    status = 200
    if request.method == "POST":
        require_role(project_id=request.project.pk, actor=request.user, role=Role.EDITOR, what="Explaining an output")
        chosen = next((e for e in endpoints if str(e.pk) == request.POST.get("endpoint", "")), None)
        try:
            subject = subject_for(chosen)
            probe_services.explanation_start(project=request.project, actor=request.user, subject=subject, **start)
        except explain.ExplainError as exc:
            context["problem"] = str(exc)
            status = 400
        else:
            return redirect(request.path)
    context["explanation"] = latest.select_related("endpoint", "created_by").first()
    return render(request, "experiments/explain.html", context, status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.VIEWER)
def cell_explain(request: HttpRequest, experiment_id: int, cell_id: int) -> HttpResponse:
    """One experiment output explained: occlusion and token sensitivity, run by a worker."""
    from dataclasses import replace

    from django.http import Http404
    from django.urls import reverse

    from apps.experiments import selectors
    from apps.experiments.models import Cell, Explanation
    from apps.experiments.probes import explain

    experiment = selectors.experiment_get(project=request.project, experiment_id=experiment_id)
    cell = (
        Cell.objects.select_related("item", "variant__prompt_version__prompt", "variant__endpoint")
        .filter(experiment=experiment, pk=cell_id)
        .first()
    )
    if cell is None:
        raise Http404("No such result in this experiment.")
    slug = request.project.slug
    context: dict[str, Any] = {
        "crumbs": [(reverse("experiments:list", args=[slug]), "Experiments"),
                   (reverse("experiments:detail", args=[slug, experiment.pk]), experiment.name)],
        "subject_title": f"row {cell.position + 1}, variant {cell.variant.name}",
        "inputs": cell.item.input or {},
        "output": cell.output,
    }  # fmt: skip
    return explain_page(
        request,
        subject_for=lambda endpoint: replace(explain.subject_of_cell(cell), endpoint=endpoint),
        latest=Explanation.objects.filter(cell=cell),
        start={"cell": cell},
        context=context,
        default_endpoint=lambda endpoints: cell.variant.endpoint_id,
    )


@project_role_required(Role.VIEWER)
def explanation_part(request: HttpRequest, explanation_id: int) -> HttpResponse:
    """The explanation's section alone: the page polls it while a worker runs it."""
    from django.shortcuts import get_object_or_404

    from apps.experiments.models import Explanation

    explanation = get_object_or_404(
        Explanation.objects.select_related("endpoint", "created_by"), project=request.project, pk=explanation_id
    )
    from apps.experiments.probes import explain

    return render(request, "experiments/_explanation.html", {"explanation": explanation,
                                                              "max_words": explain.SENSITIVITY_WORDS})  # fmt: skip


@require_POST
@project_role_required(Role.ADMIN)
def acceptable_use_edit(request: HttpRequest) -> HttpResponse:
    from apps.reviews import services as review_services

    try:
        review_services.acceptable_use_save(
            project=request.project, statement=request.POST.get("statement", ""), actor=request.user
        )
    except review_services.ReviewError as exc:
        context: dict[str, Any] = {**_choices(request.project), "problem": str(exc), "form": request.POST}
        return render(request, "experiments/probe_new.html", context, status=400)
    messages.success(request, "Saved the acceptable-use statement; reviewers confirm it with each approval.")
    return redirect("experiments:probe_new", request.project.slug)
