from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.providers import selectors, services
from apps.providers.forms import EndpointForm

# --- endpoints -------------------------------------------------------------------------------------


def _endpoint_rows(project) -> list[dict[str, Any]]:
    checks = selectors.endpoint_checks_latest(project=project)
    return [
        {"endpoint": e, "local": selectors.local_status(endpoint=e), "check": checks.get(e.pk)}
        for e in selectors.endpoint_list(project=project)
    ]


@require_GET
@project_role_required(Role.VIEWER)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    if request.htmx and request.GET.get("check"):
        try:
            check = selectors.endpoint_check_get(project=request.project, check_id=int(request.GET["check"]))
        except ValueError:
            raise Http404("No such connection test in this project.") from None
        return render(request, "providers/endpoint_list.html#test_result", {"check": check})
    rows = _endpoint_rows(request.project)
    checking = any(r["check"] and not r["check"].is_finished and not r["check"].is_stalled for r in rows)
    context = {"rows": rows, "checking": checking}
    if request.htmx and request.GET.get("part") == "local":
        return render(request, "providers/endpoint_list.html#table", context)
    return render(request, "providers/endpoint_list.html", context)


def _save_endpoint(request: HttpRequest, form: EndpointForm, endpoint=None):
    data = dict(form.cleaned_data)
    api_key, clear = data.pop("api_key") or None, data.pop("clear_api_key")
    try:
        if endpoint is None:
            return services.endpoint_create(project=request.project, actor=request.user, api_key=api_key or "", **data)
        return services.endpoint_update(
            endpoint=endpoint, actor=request.user, api_key=api_key, clear_api_key=clear, **data
        )
    except services.EndpointError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return None


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = _save_endpoint(request, form)
        if endpoint is not None:
            messages.success(request, f"Endpoint {endpoint.name} created. Use Test connection to check it.")
            return redirect("providers:endpoints", project_slug=request.project.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "providers/endpoint_form.html", {"form": form, "endpoint": None}, status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def endpoint_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(project=request.project, endpoint_id=endpoint_id)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid() and _save_endpoint(request, form, endpoint) is not None:
            messages.success(request, f"Endpoint {form.cleaned_data['name']} saved.")
            return redirect("providers:endpoints", project_slug=request.project.slug)
        status = 400
    else:
        form, status = EndpointForm(initial=EndpointForm.initial_for(endpoint)), 200
    context = {"form": form, "endpoint": endpoint, "local": selectors.local_status(endpoint=endpoint)}
    return render(request, "providers/endpoint_form.html", context, status=status)


@require_POST
@project_role_required(Role.ADMIN)
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(project=request.project, endpoint_id=endpoint_id)
    services.endpoint_delete(endpoint=endpoint, actor=request.user)
    messages.success(request, f"Endpoint {endpoint.name} deleted.")
    return redirect("providers:endpoints", project_slug=request.project.slug)


@require_POST
@project_role_required(Role.ADMIN)
def endpoint_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(project=request.project, endpoint_id=endpoint_id)
    check = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    if request.htmx:
        return render(request, "providers/endpoint_list.html#test_result", {"check": check})
    messages.info(request, f"Testing {endpoint.name}: the answer appears next to it.")
    return redirect("providers:endpoints", project_slug=request.project.slug)
