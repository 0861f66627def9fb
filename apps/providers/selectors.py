"""Reads of model endpoints. Every read is scoped to a project."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Project
from apps.providers import local_models
from apps.providers.models import EndpointCheck, EndpointKind, ModelEndpoint


def endpoint_list(*, project: Project, active_only: bool = False) -> QuerySet[ModelEndpoint]:
    endpoints = ModelEndpoint.objects.filter(project=project)
    if active_only:
        endpoints = endpoints.filter(is_active=True)
    return endpoints.order_by("name")


def endpoint_get(*, project: Project, endpoint_id: int) -> ModelEndpoint:
    endpoint = ModelEndpoint.objects.filter(project=project, pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such model endpoint in this project.")
    return endpoint


def endpoints_by_ids(*, project: Project, ids: list[int]) -> list[ModelEndpoint]:
    """The active endpoints with these ids, in the order given; an id of another project is a 404."""
    found = {e.pk: e for e in ModelEndpoint.objects.filter(project=project, pk__in=ids, is_active=True)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise Http404("No such model endpoint in this project.")
    return [found[i] for i in dict.fromkeys(ids)]


def local_status(*, endpoint: ModelEndpoint) -> dict | None:
    """For a managed local endpoint: the installer's state and progress, for the page."""
    if endpoint.kind != EndpointKind.LOCAL:
        return None
    spec = local_models.spec_for_model(endpoint.model)
    ready, sentence = local_models.readiness(spec)
    return {**local_models.read_status(spec), "ready": ready, "summary": sentence}


def endpoint_check_get(*, project: Project, check_id: int) -> EndpointCheck:
    check = EndpointCheck.objects.filter(endpoint__project=project, pk=check_id).select_related("endpoint").first()
    if check is None:
        raise Http404("No such connection test in this project.")
    return check


def endpoint_checks_latest(*, project: Project, since: timedelta = timedelta(minutes=10)) -> dict[int, EndpointCheck]:
    """The newest Test connection of each endpoint in the last `since`, by endpoint id (for the list page)."""
    latest: dict[int, EndpointCheck] = {}
    recent = EndpointCheck.objects.filter(endpoint__project=project, created_at__gte=timezone.now() - since)
    for check in recent.select_related("endpoint").order_by("-created_at", "-id"):
        latest.setdefault(check.endpoint_id, check)
    return latest
