from __future__ import annotations

import logging

from celery import shared_task

from apps.traces import ingest

logger = logging.getLogger(__name__)


@shared_task(name="traces.expand_batch", ignore_result=True, acks_late=True, queue="ingest")
def expand_batch(batch_id: int) -> None:
    """Write an accepted batch's rows in bulk.

    Running it twice writes nothing twice: a done batch is skipped, and the
    rows are keyed by the client's ids. A worker killed mid-batch leaves the
    batch pending (its transaction rolled back); the message is delivered again.
    """
    try:
        ingest.batch_expand(batch_id=batch_id)
    except Exception as exc:
        logger.exception("Ingest batch %s failed", batch_id)
        ingest.batch_failed(batch_id=batch_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name="traces.sweep", ignore_result=True)
def sweep() -> None:
    """Enqueue again pending batches whose message was lost. Twice is harmless: a done batch is skipped."""
    ingest.batches_requeue()


@shared_task(name="traces.retention", ignore_result=True, acks_late=True)
def retention() -> None:
    """Delete rows older than each project's retention, in chunks. Running it twice deletes nothing more."""
    ingest.retention_apply()
