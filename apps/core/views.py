from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts import selectors as account_selectors
from apps.core.health import CHECKS, WEB_CHECKS, worker_status


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    body: dict[str, object] = {}
    errors: dict[str, str] = {}
    checks = WEB_CHECKS if request.GET.get("scope") == "web" else CHECKS
    for name, check in checks.items():
        problem = check()
        body[name] = "ok" if problem is None else "down"
        if problem is not None:
            errors[name] = problem
    body["status"] = "ok" if not errors else "down"
    if errors:
        body["errors"] = errors
    if request.GET.get("workers") and "database" not in errors:
        body.update(worker_status())
    return JsonResponse(body, status=200 if not errors else 503)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = account_selectors.project_list_for_user(user=request.user)
    if len(projects) == 1:
        return redirect("prompts:list", project_slug=projects[0].slug)
    return render(request, "core/home.html", {"project_list": projects})
