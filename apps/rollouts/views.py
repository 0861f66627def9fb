from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import Forbidden, project_role_required
from apps.prompts import selectors as prompt_selectors
from apps.prompts import services as prompt_services
from apps.rollouts import charts, selectors, services
from apps.rollouts.forms import CanaryStartForm


def _prompt_choices(project) -> list[tuple[str, str]]:
    return [(p.name, p.name) for p in prompt_selectors.prompt_list(project=project)]


@require_http_methods(["GET", "POST"])
@project_role_required(Role.VIEWER)
def canary_list(request: HttpRequest) -> HttpResponse:
    project = request.project
    form = CanaryStartForm(
        request.POST or None,
        prompts=_prompt_choices(project),
        initial={"prompt": request.GET.get("prompt", ""), "version": request.GET.get("version")},
    )
    status = 200
    if request.method == "POST":
        if request.membership.role == Role.VIEWER:
            raise Forbidden("Starting a canary needs the editor role.")
        if form.is_valid():
            data = form.cleaned_data
            prompt = prompt_selectors.prompt_get(project=project, name=data["prompt"])
            version = prompt.versions.filter(number=data["version"]).first() if prompt else None
            if version is None:
                form.add_error("version", f"{data['prompt']} has no version {data['version']}.")
            else:
                try:
                    rollout = services.rollout_start(
                        prompt=prompt,
                        label_name=data["label"],
                        canary_version=version,
                        actor=request.user,
                        steps=data["steps"],
                        min_volume=data["min_volume"],
                        min_minutes=data["min_minutes"],
                        guardrails=form.guardrails(),
                    )
                except (services.RolloutError, prompt_services.PromptError) as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(request, f"Canary of v{version.number} started at {rollout.weight / 100:g}%.")
                    return redirect("rollouts:detail", project_slug=project.slug, pk=rollout.pk)
        status = 400
    rollouts = selectors.rollouts_of(project_id=project.pk)[:50]
    return render(request, "rollouts/canary_list.html", {"form": form, "rollouts": rollouts}, status=status)


@require_GET
@project_role_required(Role.EDITOR)
def canary_new(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The version page's "Start a canary": the form, filled in with that version."""
    query = urlencode({"prompt": name, "version": number})
    return redirect(f"{reverse('rollouts:list', args=[request.project.slug])}?{query}#canary-form")


@require_GET
@project_role_required(Role.VIEWER)
def canary_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rollout = selectors.rollout_get(project_id=request.project.pk, rollout_id=pk)
    if rollout is None:
        raise Http404("No such canary.")
    report = selectors.guardrails(rollout)
    checks = list(rollout.checks.all())
    figures = {g.metric: charts.boundary(checks, g.metric, f"{g.label}: decision boundary") for g in report}
    context = {
        "rollout": rollout,
        "report": report,
        "figures": {k: v for k, v in figures.items() if v},
        "events": rollout.events.all(),
        "step_volume": selectors.step_volume(rollout) if rollout.is_active else None,
        "stable_share": 10_000 - rollout.weight,
    }
    template = "rollouts/canary_detail.html#live" if request.htmx else "rollouts/canary_detail.html"
    return render(request, template, context)


@require_POST
@project_role_required(Role.EDITOR)
def canary_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    rollout = selectors.rollout_get(project_id=request.project.pk, rollout_id=pk)
    if rollout is None:
        raise Http404("No such canary.")
    try:
        if action == "promote":
            services.rollout_promote(rollout_id=pk, actor=request.user)
        elif action == "rollback":
            services.rollout_rollback(rollout_id=pk, actor=request.user)
        elif action in ("pause", "resume"):
            services.rollout_pause(rollout_id=pk, actor=request.user, pause=action == "pause")
        elif action == "check":
            services.rollout_evaluate(rollout_id=pk)
        else:
            raise Http404("No such action.")
    except (services.RolloutError, prompt_services.PromptError) as exc:
        messages.error(request, str(exc))
    return redirect("rollouts:detail", project_slug=request.project.slug, pk=pk)
