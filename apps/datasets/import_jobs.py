"""Import jobs: an uploaded file kept server-side under a random token, mapped, then stored as one version.

A small file is imported in the request; a large one on the `experiments` queue, its progress in a file
beside the upload. The version itself is written by `services.dataset_version_create_from_records`.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_user
from apps.datasets import importing
from apps.datasets.models import Dataset, ImportJob, ImportStatus, VersionSource
from apps.datasets.services import (
    DatasetError,
    check_dataset_name,
    dataset_create,
    dataset_version_create_from_records,
)

logger = logging.getLogger(__name__)


def _upload_dir(job: ImportJob) -> Path:
    return settings.DATASET_UPLOAD_DIR / job.token


def upload_path(job: ImportJob) -> Path:
    return _upload_dir(job) / f"upload.{job.file_format}"


def progress_path(job: ImportJob) -> Path:
    return _upload_dir(job) / "progress.json"


def _sweep_stale_uploads() -> None:
    cutoff = timezone.now() - timedelta(hours=settings.DATASET_UPLOAD_TTL_HOURS)
    stale = ImportJob.objects.filter(created_at__lt=cutoff, status=ImportStatus.UPLOADED)
    for job in stale:
        shutil.rmtree(_upload_dir(job), ignore_errors=True)
    stale.update(status=ImportStatus.FAILED, error="The upload expired before it was imported.")


def import_upload(
    *, project: Project, actor, uploaded, dataset: Dataset | None = None, dataset_name: str = ""
) -> ImportJob:
    """Keep an uploaded file server-side (under a random token) until it is mapped and imported."""
    limit = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
    if uploaded is None:
        raise DatasetError("Choose a file to upload.")
    if uploaded.size > limit:
        raise DatasetError(
            f"The file is {uploaded.size / 1024 / 1024:.1f} MB; the limit is {settings.DATASET_MAX_UPLOAD_MB} MB "
            "(DATASET_MAX_UPLOAD_MB)."
        )
    if uploaded.size == 0:
        raise DatasetError("The file is empty.")
    if dataset is None:
        dataset_name = check_dataset_name(dataset_name)
        if Dataset.objects.filter(project=project, name=dataset_name).exists():
            raise DatasetError(f"A dataset called '{dataset_name}' already exists; choose it or another name.")
    elif dataset.project_id != project.pk:
        raise DatasetError("That dataset belongs to another project.")
    _sweep_stale_uploads()
    head = uploaded.read(4096)
    uploaded.seek(0)
    fmt = importing.detect_format(uploaded.name or "", head)
    job = ImportJob(
        project=project,
        created_by=actor_user(actor),
        token=secrets.token_urlsafe(24),
        filename=Path(uploaded.name or "upload").name[:255],
        file_format=fmt,
        size=uploaded.size,
        dataset=dataset,
        dataset_name="" if dataset else dataset_name,
    )
    path = upload_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    job.save()
    return job


def import_discard(*, job: ImportJob) -> None:
    shutil.rmtree(_upload_dir(job), ignore_errors=True)
    if not job.is_finished:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, error="Cancelled.", finished_at=timezone.now()
        )


def import_is_large(job: ImportJob) -> bool:
    """Large files are imported by a worker. An XLSX file counts at its unpacked size: 700 KB can hold 170 MB."""
    if job.size > settings.DATASET_ASYNC_IMPORT_BYTES:
        return True
    if job.file_format == "xlsx":
        try:
            return importing.xlsx_unpacked_bytes(upload_path(job)) > settings.DATASET_ASYNC_IMPORT_BYTES
        except importing.ImportProblem:
            return False  # reading it names the problem
    return False


def import_read(*, job: ImportJob, preview: bool = False) -> importing.Table:
    path = upload_path(job)
    if not path.exists():
        raise importing.ImportProblem("The uploaded file is gone (it expired or was imported); upload it again.")
    limit = 50 if preview and import_is_large(job) else None
    return importing.read_table(path, job.file_format, limit=limit)


def import_set_format(*, job: ImportJob, fmt: str) -> ImportJob:
    if fmt not in importing.FORMATS:
        raise DatasetError(f"Unknown format '{fmt}'.")
    old, job.file_format = upload_path(job), fmt
    if old != upload_path(job) and old.exists():
        old.rename(upload_path(job))
    job.save(update_fields=["file_format"])
    return job


def import_start(*, job: ImportJob, mapping: dict[str, dict[str, str]], message: str, actor) -> ImportJob:
    """Run the import now (small file) or queue it on the `experiments` queue (large file)."""
    if job.status != ImportStatus.UPLOADED:
        raise DatasetError(f"This import is already {job.get_status_display().lower()}.")
    table = import_read(job=job, preview=True)
    mapping = importing.check_mapping(table.columns, mapping)
    job.mapping = mapping
    job.message = message[:500]
    if import_is_large(job):
        with transaction.atomic():
            updated = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.UPLOADED).update(
                status=ImportStatus.QUEUED, mapping=mapping, message=job.message
            )
            if updated != 1:
                raise DatasetError("This import was already started.")
            _write_progress(job, 0, 0, "queued")
            from apps.datasets.tasks import import_run_task

            transaction.on_commit(lambda: import_run_task.apply_async(args=[job.pk], queue="experiments"))
        job.refresh_from_db()
        return job
    updated = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.UPLOADED).update(
        status=ImportStatus.QUEUED, mapping=mapping, message=job.message
    )
    if updated != 1:
        raise DatasetError("This import was already started.")
    return import_run(job_id=job.pk)


def _write_progress(job: ImportJob, done: int, total: int, phase: str) -> None:
    """Progress lives in a file beside the upload: the import's transaction hides its own row updates."""
    path = progress_path(job)
    if not path.parent.exists():
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"done": done, "total": total, "phase": phase}))
    tmp.replace(path)


def import_progress(job: ImportJob) -> dict[str, Any]:
    if job.status == ImportStatus.DONE:
        return {"done": 1, "total": 1, "phase": "done", "percent": 100}
    try:
        data = json.loads(progress_path(job).read_text())
    except (OSError, ValueError):
        data = {"done": 0, "total": 0, "phase": job.status}
    data["percent"] = int(100 * data["done"] / data["total"]) if data.get("total") else 0
    return data


def _failed(job: ImportJob, error: str) -> None:
    """Mark a run failed, its upload removed first (whoever sees the job finished finds no file left)."""
    shutil.rmtree(_upload_dir(job), ignore_errors=True)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, error=error, finished_at=timezone.now())


def import_run(*, job_id: int) -> ImportJob:
    """Read, map and store the file as one version, all or nothing. The uploaded file is removed afterwards.

    Running it twice is harmless: a finished job is left as it is; a job left
    `running` by a killed worker is run again from the start, which is safe
    because a crashed run's transaction wrote nothing.
    """
    claimed = ImportJob.objects.filter(pk=job_id, status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.select_related("dataset", "project", "created_by").filter(pk=job_id).first()
    if job is None or claimed != 1:
        return job
    last = [0.0]

    def progress(done: int, total: int, phase: str = "storing rows") -> None:
        now = time.monotonic()
        if now - last[0] > 0.25 or done == total:
            last[0] = now
            _write_progress(job, done, total, phase)

    try:
        _write_progress(job, 0, 0, "reading the file")
        table = import_read(job=job)
        progress(0, table.row_count, "checking rows")
        records = list(importing.build_records(table, job.mapping))
        del table
        with transaction.atomic():
            dataset = job.dataset or dataset_create(project=job.project, name=job.dataset_name, actor=job.created_by)
            version = dataset_version_create_from_records(
                dataset=dataset,
                records=records,
                message=job.message or f"Imported {job.filename}",
                actor=job.created_by,
                source=VersionSource.IMPORT,
                progress=progress,
            )
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportStatus.DONE, version=version, dataset=dataset, finished_at=timezone.now(), error=""
            )
    except (importing.ImportProblem, DatasetError) as exc:
        _failed(job, str(exc))
    except Exception:
        logger.exception("Import %s failed", job.pk)
        _failed(job, "The import failed on an unexpected error; nothing was saved. The server log has the details.")
        raise
    finally:
        shutil.rmtree(_upload_dir(job), ignore_errors=True)
    job.refresh_from_db()
    return job
