"""A large file is imported by a real Celery worker on the `experiments` queue, with progress."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from apps.datasets import import_jobs, importing
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion, ImportJob, ImportStatus


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _csv(rows: int, bad_row: int | None = None) -> bytes:
    lines = ["ticket,customer_name,n"]
    for i in range(rows):
        lines.append(f"Ticket number {i} about an invoice,Dana,{'oops' if i == bad_row else i}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.worker
@override_settings(DATASET_ASYNC_IMPORT_BYTES=1024)
def test_it_imports_a_large_file_on_a_real_worker(celery_worker, project, editor, client):
    job = import_jobs.import_upload(
        project=project, actor=editor, uploaded=SimpleUploadedFile("big.csv", _csv(20_000)), dataset_name="big"
    )
    mapping = importing.guess_mapping(import_jobs.import_read(job=job, preview=True))
    job = import_jobs.import_start(job=job, mapping=mapping, message="big import", actor=editor)
    assert job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE)  # handed to the worker
    client.force_login(editor)
    status_url = reverse("datasets:import_status", args=[project.slug, job.token])
    page = client.get(status_url)
    assert b'role="progressbar"' in page.content or b"Imported" in page.content
    assert _wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.error
    assert job.version.row_count == 20_000 and job.version.message == "big import"
    assert job.version.input_columns == ["ticket", "customer_name", "n"]
    first = job.version.rows.get(position=0).item
    assert first.input["n"] == 0  # the mapping's number type was applied by the worker
    done = client.get(status_url, HTTP_HX_REQUEST="true")
    assert done["HX-Redirect"].endswith(f"/v/{job.version.number}/")


@pytest.mark.worker
@override_settings(DATASET_ASYNC_IMPORT_BYTES=1024)
def test_a_large_import_that_fails_on_the_worker_leaves_nothing(celery_worker, project, editor):
    job = import_jobs.import_upload(
        project=project,
        actor=editor,
        uploaded=SimpleUploadedFile("big.csv", _csv(5_000, bad_row=4_321)),
        dataset_name="big",
    )
    mapping = {
        "ticket": {"role": "input", "type": "string"},
        "customer_name": {"role": "input", "type": "string"},
        "n": {"role": "input", "type": "number"},
    }
    import_jobs.import_start(job=job, mapping=mapping, message="", actor=editor)
    assert _wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "Row 4322, column 'n': 'oops' is not a number." in job.error
    assert not Dataset.objects.exists() and not DatasetVersion.objects.exists() and not DatasetItem.objects.exists()
    assert not import_jobs.upload_path(job).exists()
