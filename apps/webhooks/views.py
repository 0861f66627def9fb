"""A project admin's webhook pages: the list with the form to add one, and each webhook's delivery log."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.webhooks import selectors, services
from apps.webhooks.forms import WebhookForm


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def webhook_list(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    context: dict[str, Any] = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                webhook = services.webhook_create(project=request.project, actor=request.user, **form.cleaned_data)
            except services.WebhookError as exc:
                form.add_error("url", str(exc))
            else:
                # The secret is shown in this response only; it is never put in a message or the URL.
                context["new_webhook"] = webhook
                form = WebhookForm()
                context["form"] = form
        if form.errors:
            status = 400
    context["webhooks"] = selectors.webhook_list(project=request.project)
    return render(request, "webhooks/webhook_list.html", context, status=status)


@require_GET
@project_role_required(Role.ADMIN)
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = selectors.webhook_get(project=request.project, pk=pk)
    context = {"webhook": webhook, "deliveries": selectors.delivery_list(webhook=webhook)}
    template = "webhooks/webhook_detail.html#deliveries" if request.htmx else "webhooks/webhook_detail.html"
    return render(request, template, context)


@require_POST
@project_role_required(Role.ADMIN)
def webhook_active(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = selectors.webhook_get(project=request.project, pk=pk)
    services.webhook_set_active(webhook=webhook, active=request.POST.get("active") == "1", actor=request.user)
    return redirect("webhooks:detail", project_slug=request.project.slug, pk=webhook.pk)


@require_POST
@project_role_required(Role.ADMIN)
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = selectors.webhook_get(project=request.project, pk=pk)
    services.webhook_delete(webhook=webhook, actor=request.user)
    messages.success(request, f"Webhook {webhook.url} deleted.")
    return redirect("webhooks:list", project_slug=request.project.slug)


@require_POST
@project_role_required(Role.ADMIN)
def webhook_ping(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = selectors.webhook_get(project=request.project, pk=pk)
    services.webhook_ping(webhook=webhook, actor=request.user)
    messages.success(request, "Ping queued; its delivery appears below.")
    return redirect("webhooks:detail", project_slug=request.project.slug, pk=webhook.pk)


@require_POST
@project_role_required(Role.ADMIN)
def delivery_retry(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = selectors.delivery_get(project=request.project, pk=pk)
    try:
        services.delivery_retry(delivery=delivery, actor=request.user)
    except services.WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Delivery queued again.")
    return redirect("webhooks:detail", project_slug=request.project.slug, pk=delivery.webhook_id)
