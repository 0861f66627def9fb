"""Reads of playground runs. Every read is scoped to a project."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from apps.accounts.models import Project
from apps.playground.models import PlaygroundResult, PlaygroundRun


def playground_run_get(*, project: Project, run_id: int) -> PlaygroundRun:
    run = (
        PlaygroundRun.objects.filter(project=project, pk=run_id)
        .select_related("version__prompt", "created_by")
        .prefetch_related(Prefetch("results", queryset=PlaygroundResult.objects.select_related("endpoint")))
        .first()
    )
    if run is None:
        raise Http404("No such playground run in this project.")
    return run


def playground_run_list(*, project: Project, limit: int = 15) -> QuerySet[PlaygroundRun]:
    return (
        PlaygroundRun.objects.filter(project=project)
        .select_related("version__prompt", "created_by")
        .prefetch_related("results")
        .order_by("-created_at", "-id")[:limit]
    )


def playground_result_get(*, run: PlaygroundRun, result_id: int) -> PlaygroundResult:
    """One result of a run already scoped to a project; a result of another run is a 404."""
    result = PlaygroundResult.objects.filter(run=run, pk=result_id).select_related("run__version__prompt").first()
    if result is None:
        raise Http404("No such result in this playground run.")
    return result
