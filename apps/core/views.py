from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and tools ask for /favicon.ico whatever the page says; send them to the vendored icon."""
    from django.templatetags.static import static

    return redirect(static("favicon.svg"), permanent=True)
