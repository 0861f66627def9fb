from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.monitoring import alerts, calibration, charts, drift, impact, online, selectors
from apps.monitoring.forms import AlertRuleForm, DriftForm, OnlineRuleForm
from apps.monitoring.models import Alert, AlertRule, AlertStatus, DriftReport, OnlineEvalRule


def _prompt_choices(project) -> list[tuple[str, str]]:
    from apps.prompts.models import Prompt

    return [
        (str(pk), name)
        for pk, name in Prompt.objects.filter(project=project).order_by("name").values_list("pk", "name")
    ]


def _dataset_choices(project) -> list[tuple[str, str]]:
    from apps.datasets.models import DatasetVersion

    return [
        (str(pk), f"dataset {name} v{number}")
        for pk, name, number in DatasetVersion.objects.filter(dataset__project=project)
        .order_by("dataset__name", "-number")
        .values_list("pk", "dataset__name", "number")
    ]


def _endpoint_choices(project) -> list[tuple[str, str]]:
    from apps.providers.models import ModelEndpoint

    return [
        (str(pk), f"{name} ({model})")
        for pk, name, model in ModelEndpoint.objects.filter(project=project, is_active=True)
        .order_by("name")
        .values_list("pk", "name", "model")
    ]


@require_GET
@project_role_required(Role.VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    project = request.project
    problem, status = "", 200
    try:
        filters = selectors.filters_from(request.GET)
        data = selectors.metrics(project_id=project.pk, f=filters)
        moves = selectors.label_moves(project_id=project.pk, f=filters, scope=data["scope"])
    except selectors.FilterProblem as exc:
        problem, status = exc.message, 200 if request.htmx else 400  # htmx swaps only a 2xx: the problem shows
        filters = selectors.filters_from({})
        data = selectors.metrics(project_id=project.pk, f=filters)
        moves = selectors.label_moves(project_id=project.pk, f=filters, scope=data["scope"])
    online_names = selectors.online_score_names(project_id=project.pk)
    context = {
        "feedback_scores": [s for s in data["scores"] if s["name"] not in online_names],
        "online_scores": [s for s in data["scores"] if s["name"] in online_names],
        "filters": filters,
        "raw": request.GET,
        "problem": problem,
        "data": data,
        "moves": moves,
        "figures": charts.dashboard(data, moves),
        "choices": selectors.filter_choices(project_id=project.pk),
        "health": selectors.health(project_id=project.pk),
        "open_alerts": Alert.objects.filter(project=project)
        .exclude(status=AlertStatus.RESOLVED)
        .select_related("rule")[:10],
        "reports": DriftReport.objects.filter(project=project, finding_count__gt=0).select_related("prompt")[:5],
    }
    template = "monitoring/dashboard.html#panel" if request.htmx else "monitoring/dashboard.html"
    return render(request, template, context, status=status)


@require_GET
@project_role_required(Role.VIEWER)
def drift_list(request: HttpRequest) -> HttpResponse:
    project = request.project
    form = DriftForm(prompts=_prompt_choices(project), datasets=_dataset_choices(project),
                     endpoints=_endpoint_choices(project))  # fmt: skip
    reports = DriftReport.objects.filter(project=project).select_related("prompt")[:50]
    return render(request, "monitoring/drift_list.html", {"reports": reports, "form": form})


@require_POST
@project_role_required(Role.EDITOR)
def drift_run(request: HttpRequest) -> HttpResponse:
    from apps.datasets.models import DatasetVersion
    from apps.prompts.models import Prompt

    project = request.project
    form = DriftForm(request.POST, prompts=_prompt_choices(project), datasets=_dataset_choices(project),
                     endpoints=_endpoint_choices(project))  # fmt: skip
    if not form.is_valid():
        reports = DriftReport.objects.filter(project=project).select_related("prompt")[:50]
        return render(request, "monitoring/drift_list.html", {"reports": reports, "form": form}, status=400)
    prompt = Prompt.objects.get(project=project, pk=form.cleaned_data["prompt"])
    reference = form.cleaned_data["reference"]
    dataset_version = None if reference == "previous" else DatasetVersion.objects.get(pk=reference)
    embed_endpoint = None
    if form.cleaned_data["embed_endpoint"]:
        from apps.providers.models import ModelEndpoint

        embed_endpoint = ModelEndpoint.objects.get(project=project, pk=form.cleaned_data["embed_endpoint"])
    report = drift.report_create(prompt=prompt, window_hours=form.cleaned_data["window_hours"],
                                 dataset_version=dataset_version, embed_endpoint=embed_endpoint)  # fmt: skip
    return redirect("monitoring:drift_detail", project_slug=project.slug, pk=report.pk)


@require_GET
@project_role_required(Role.VIEWER)
def drift_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = DriftReport.objects.filter(project=request.project, pk=pk).select_related("prompt").first()
    if report is None:
        raise Http404("No such drift report.")
    rows = [{"test": t, "figure": charts.drift_figure(t) if t["finding"] else None} for t in report.tests]
    return render(request, "monitoring/drift_detail.html", {"report": report, "rows": rows})


@require_GET
@project_role_required(Role.VIEWER)
def alert_list(request: HttpRequest) -> HttpResponse:
    project = request.project
    context = {
        "rules": AlertRule.objects.filter(project=project).select_related("prompt"),
        "alerts": Alert.objects.filter(project=project).select_related("rule", "acknowledged_by")[:100],
        "form": AlertRuleForm(prompts=_prompt_choices(project)),
    }
    return render(request, "monitoring/alert_list.html", context)


@require_POST
@project_role_required(Role.EDITOR)
def rule_create(request: HttpRequest) -> HttpResponse:
    project = request.project
    form = AlertRuleForm(request.POST, prompts=_prompt_choices(project))
    problem = ""
    if form.is_valid():
        data = dict(form.cleaned_data)
        prompt_id = data.pop("prompt")
        try:
            alerts.rule_create(project=project, actor=request.user, prompt_id=int(prompt_id) if prompt_id else None,
                               **data)  # fmt: skip
        except alerts.AlertError as exc:
            problem = str(exc)
        else:
            messages.success(request, f"Alert rule {data['name']!r} created; it is evaluated every few minutes.")
            return redirect("monitoring:alerts", project_slug=project.slug)
    context = {
        "rules": AlertRule.objects.filter(project=project).select_related("prompt"),
        "alerts": Alert.objects.filter(project=project).select_related("rule")[:100],
        "form": form,
        "problem": problem,
    }
    return render(request, "monitoring/alert_list.html", context, status=400)


@require_POST
@project_role_required(Role.EDITOR)
def rule_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    rule = AlertRule.objects.filter(project=request.project, pk=pk).select_related("prompt").first()
    if rule is None:
        raise Http404("No such alert rule.")
    changed = alerts.rule_evaluate(rule)
    messages.info(request, f"Evaluated {rule.name}: " + (f"alert {changed.status}." if changed else "no change."))
    return redirect("monitoring:alerts", project_slug=request.project.slug)


@require_POST
@project_role_required(Role.EDITOR)
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = AlertRule.objects.filter(project=request.project, pk=pk).first()
    if rule is None:
        raise Http404("No such alert rule.")
    alerts.rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Alert rule {rule.name!r} deleted.")
    return redirect("monitoring:alerts", project_slug=request.project.slug)


@require_GET
@project_role_required(Role.VIEWER)
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = Alert.objects.filter(project=request.project, pk=pk).select_related("rule", "rule__prompt").first()
    if alert is None:
        raise Http404("No such alert.")
    return render(request, "monitoring/alert_detail.html", {"alert": alert})


@require_POST
@project_role_required(Role.EDITOR)
def alert_change(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    alert = Alert.objects.filter(project=request.project, pk=pk).select_related("rule").first()
    if alert is None:
        raise Http404("No such alert.")
    try:
        if action == "acknowledge":
            alerts.alert_acknowledge(alert=alert, actor=request.user)
        else:
            alerts.alert_resolve(alert=alert, actor=request.user)
    except alerts.AlertError as exc:
        messages.error(request, str(exc))
    return redirect("monitoring:alert_detail", project_slug=request.project.slug, pk=alert.pk)


@require_GET
@project_role_required(Role.VIEWER)
def release_impact(request: HttpRequest, move_id: int) -> HttpResponse:
    from apps.prompts.models import LabelMove

    move = (
        LabelMove.objects.filter(prompt__project=request.project, pk=move_id)
        .select_related("prompt", "from_version", "to_version")
        .first()
    )
    if move is None:
        raise Http404("No such label move.")
    try:
        hours = int(request.GET.get("hours", "24"))
    except ValueError:
        hours = 0
    if not 1 <= hours <= 24 * 30:
        return render(
            request,
            "monitoring/impact.html",
            {"move": move, "problem": "hours must be a whole number from 1 to 720."},
            status=400,
        )
    result = impact.compare(move=move, hours=hours)
    return render(request, "monitoring/impact.html", {"move": move, "result": result, "hours": hours})


# --- online evaluation -------------------------------------------------------------------------------------


def _endpoints(project) -> list:
    from apps.providers.models import ModelEndpoint

    return list(ModelEndpoint.objects.filter(project=project).order_by("name").values("pk", "name", "model", "kind"))


def _online_list(request: HttpRequest, form: OnlineRuleForm, problem: str = "", status: int = 200) -> HttpResponse:
    project = request.project
    context = {
        "rules": selectors.online_rules(project_id=project.pk),
        "form": form,
        "problem": problem,
        "endpoints": _endpoints(project),
    }
    return render(request, "monitoring/online_list.html", context, status=status)


@require_GET
@project_role_required(Role.VIEWER)
def online_list(request: HttpRequest) -> HttpResponse:
    return _online_list(request, OnlineRuleForm(prompts=_prompt_choices(request.project)))


def _rule_fields(form: OnlineRuleForm) -> dict:
    data = dict(form.cleaned_data)
    data["label"] = data["label"].strip()
    return data


@require_POST
@project_role_required(Role.EDITOR)
def online_create(request: HttpRequest) -> HttpResponse:
    from apps.prompts.models import Prompt

    project = request.project
    form = OnlineRuleForm(request.POST, prompts=_prompt_choices(project))
    if not form.is_valid():
        return _online_list(request, form, status=400)
    data = _rule_fields(form)
    data["prompt"] = Prompt.objects.get(project=project, pk=data["prompt"])
    try:
        rule = online.rule_create(project=project, actor=request.user, **data)
    except online.OnlineEvalError as exc:
        return _online_list(request, form, problem=str(exc), status=400)
    messages.success(request, f"Online evaluation {rule.name!r} created: it samples new generations from now on.")
    return redirect("monitoring:online_detail", project_slug=project.slug, pk=rule.pk)


def _rule_of(request: HttpRequest, pk: int) -> OnlineEvalRule:
    rule = OnlineEvalRule.objects.filter(project=request.project, pk=pk).select_related("prompt").first()
    if rule is None:
        raise Http404("No such online evaluation rule.")
    return rule


def _edit_form(rule: OnlineEvalRule, data=None) -> OnlineRuleForm:
    import json

    initial = {
        "name": rule.name, "prompt": str(rule.prompt_id), "label": rule.label, "version_number": rule.version_number,
        "sample_rate": rule.sample_rate, "daily_max_evaluations": rule.daily_max_evaluations,
        "daily_max_cost": rule.daily_max_cost, "evaluators": json.dumps(rule.evaluators, indent=2),
        "human_score_name": rule.human_score_name, "human_pass_at": rule.human_pass_at,
    }  # fmt: skip
    return OnlineRuleForm(data, initial=initial, prompts=_prompt_choices(rule.project), editing=True)


def _online_detail(request: HttpRequest, rule: OnlineEvalRule, form, problem="", status=200) -> HttpResponse:
    context = {
        "rule": rule,
        "form": form,
        "problem": problem,
        "summary": selectors.online_rule_summary(rule=rule),
        "calibration": calibration.rule_calibration(rule=rule),
        "recent": rule.evaluations.all()[:20],
        "endpoints": _endpoints(request.project),
    }
    return render(request, "monitoring/online_detail.html", context, status=status)


@require_GET
@project_role_required(Role.VIEWER)
def online_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_of(request, pk)
    return _online_detail(request, rule, _edit_form(rule))


@require_POST
@project_role_required(Role.EDITOR)
def online_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_of(request, pk)
    form = _edit_form(rule, request.POST)
    if not form.is_valid():
        return _online_detail(request, rule, form, status=400)
    data = _rule_fields(form)
    data.pop("prompt", None)
    try:
        rule = online.rule_update(rule=rule, actor=request.user, **data)
    except online.OnlineEvalError as exc:
        return _online_detail(request, _rule_of(request, pk), form, problem=str(exc), status=400)
    messages.success(request, f"Online evaluation {rule.name!r} saved.")
    return redirect("monitoring:online_detail", project_slug=request.project.slug, pk=rule.pk)


@require_POST
@project_role_required(Role.EDITOR)
def online_set_active(request: HttpRequest, pk: int, active: bool) -> HttpResponse:
    rule = online.rule_set_active(rule=_rule_of(request, pk), active=active, actor=request.user)
    messages.success(request, f"Online evaluation {rule.name!r} {'resumed' if active else 'paused'}.")
    return redirect("monitoring:online_detail", project_slug=request.project.slug, pk=rule.pk)


@require_POST
@project_role_required(Role.EDITOR)
def online_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_of(request, pk)
    online.rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Online evaluation {rule.name!r} deleted; the scores it stored stay on the traces.")
    return redirect("monitoring:online", project_slug=request.project.slug)
