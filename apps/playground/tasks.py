from __future__ import annotations

from celery import shared_task

from apps.playground import services


# The task keeps its old name so a result queued before an upgrade still runs.
@shared_task(name="providers.run_playground_result", acks_late=True, ignore_result=True)
def run_playground_result(result_id: int) -> None:
    """Make the model call of one playground result.

    Running twice is harmless: only a queued result (or one a killed worker
    abandoned long ago) is claimed, atomically; a gone result is skipped.
    """
    services.playground_result_execute(result_id=result_id)
