from __future__ import annotations

from celery import shared_task

from apps.datasets import import_jobs


@shared_task(name="datasets.import_run", ignore_result=True, acks_late=True, queue="experiments")
def import_run_task(job_id: int) -> None:
    """Import an uploaded file as one new version (all or nothing).

    Running it twice is harmless: a finished job is skipped, and a job left
    running by a killed worker starts again from scratch (its transaction
    wrote nothing).
    """
    import_jobs.import_run(job_id=job_id)
