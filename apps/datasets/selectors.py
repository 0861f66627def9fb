"""Reads of datasets. Every read is scoped to a project (or to a version already scoped)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.accounts.models import Project
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem, ImportJob

CHUNK = 2000


def dataset_list(*, project: Project, query: str = "") -> QuerySet[Dataset]:
    datasets = Dataset.objects.filter(project=project).annotate(
        version_count=Count("versions", distinct=True), newest_number=Max("versions__number")
    )
    if query:
        datasets = datasets.filter(name__icontains=query)
    return datasets.order_by("name")


def dataset_get(*, project: Project, dataset_id: int) -> Dataset:
    dataset = Dataset.objects.filter(project=project, pk=dataset_id).first()
    if dataset is None:
        raise Http404("No such dataset in this project.")
    return dataset


def dataset_by_name(*, project: Project, name: str) -> Dataset | None:
    return Dataset.objects.filter(project=project, name=name).first()


def version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-number")


def version_newest(*, dataset: Dataset) -> DatasetVersion | None:
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()


def version_get(*, dataset: Dataset, number: int) -> DatasetVersion:
    version = DatasetVersion.objects.select_related("dataset").filter(dataset=dataset, number=number).first()
    if version is None:
        raise Http404(f"{dataset.name} has no version {number}.")
    return version


def version_get_by_id(*, project: Project, version_id: int) -> DatasetVersion:
    """For higher apps (experiments): a version by id, only within the project."""
    version = DatasetVersion.objects.select_related("dataset").filter(dataset__project=project, pk=version_id).first()
    if version is None:
        raise Http404("No such dataset version in this project.")
    return version


def version_items_page(*, version: DatasetVersion, page: int, per_page: int = 50) -> list[tuple[int, DatasetItem]]:
    """(position, item) for one page; positions are the 0-based row numbers."""
    start = max(page - 1, 0) * per_page
    rows = (
        DatasetVersionItem.objects.filter(version=version, position__gte=start, position__lt=start + per_page)
        .select_related("item")
        .order_by("position")
    )
    return [(row.position, row.item) for row in rows]


def version_item_at(*, version: DatasetVersion, position: int) -> DatasetItem:
    row = DatasetVersionItem.objects.select_related("item").filter(version=version, position=position).first()
    if row is None:
        raise Http404(f"v{version.number} has no row {position + 1}.")
    return row.item


def version_items_iter(*, version: DatasetVersion) -> Iterator[tuple[int, DatasetItem]]:
    """Every (position, item) of a version in order, read in chunks (safe for 100k rows)."""
    rows = DatasetVersionItem.objects.filter(version=version).select_related("item").order_by("position")
    for row in rows.iterator(chunk_size=CHUNK):
        yield row.position, row.item


def version_records(*, version: DatasetVersion) -> Iterator[dict[str, Any]]:
    """Every row as {input, expected, metadata}, in order: what an experiment or an export reads."""
    values = (
        DatasetVersionItem.objects.filter(version=version)
        .order_by("position")
        .values_list("item_id", "item__input", "item__expected", "item__metadata")
    )
    for item_id, inputs, expected, metadata in values.iterator(chunk_size=CHUNK):
        yield {"item_id": item_id, "input": inputs, "expected": expected, "metadata": metadata}


def version_storage(*, dataset: Dataset) -> dict[str, int]:
    """How much the dataset stores: items (shared content) and row references (one per row per version)."""
    return {
        "items": DatasetItem.objects.filter(dataset=dataset).count(),
        "row_refs": DatasetVersionItem.objects.filter(version__dataset=dataset).count(),
    }


def import_job_get(*, project: Project, user, token: str) -> ImportJob:
    """An upload is private to the user who sent it, in the project it was sent to."""
    job = (
        ImportJob.objects.select_related("dataset", "version")
        .filter(project=project, created_by=user, token=token)
        .first()
    )
    if job is None:
        raise Http404("No such upload (it may have expired).")
    return job


def import_job_list(*, project: Project, user) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project, created_by=user).select_related("dataset", "version")[:10]
