"""The audit log page of a project (list, filters, CSV export). It lives in accounts, which may use both the
role check and the audit selectors; the audit app itself imports only Django."""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.audit import selectors
from apps.core.spreadsheet import csv_download


def _filters(request: HttpRequest) -> dict:
    def day(name: str) -> dt.datetime | None:
        parsed = parse_date(request.GET.get(name, ""))
        return dt.datetime.combine(parsed, dt.time.min, tzinfo=dt.UTC) if parsed else None

    until = day("until")
    return {
        "actor": request.GET.get("actor", "").strip(),
        "action": request.GET.get("action", "").strip(),
        "object_type": request.GET.get("object_type", "").strip(),
        "object_query": request.GET.get("object", "").strip(),
        "since": day("since"),
        "until": until + dt.timedelta(days=1) if until else None,
    }


@require_GET
@project_role_required(Role.VIEWER)
def event_list(request: HttpRequest) -> HttpResponse:
    events = selectors.audit_event_list(project_id=request.project.pk, **_filters(request))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "actions": selectors.audit_action_choices(project_id=request.project.pk),
        "query": query.urlencode(),
    }
    template = "audit/event_list.html#events" if request.htmx else "audit/event_list.html"
    return render(request, template, context)


@require_GET
@project_role_required(Role.VIEWER)
def event_export(request: HttpRequest) -> StreamingHttpResponse:
    events = selectors.audit_event_list(project_id=request.project.pk, **_filters(request))

    def rows():
        yield ["time", "actor", "action", "object_type", "object_id", "object", "before", "after", "request_id", "ip"]
        for event in events.iterator(chunk_size=500):
            yield [
                event.created_at.isoformat(),
                event.actor_repr,
                event.action,
                event.object_type,
                event.object_id,
                event.object_repr,
                event.before,
                event.after,
                event.request_id,
                event.ip,
            ]

    return csv_download(rows(), f"audit-{request.project.slug}.csv")
