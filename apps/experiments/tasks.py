from __future__ import annotations

from celery import shared_task

from apps.experiments import runner, services


@shared_task(name="experiments.run_batch", queue="experiments", acks_late=True, ignore_result=True)
def run_batch(experiment_id: int, cell_ids: list[int]) -> None:
    """Run a batch of cells. Running it twice is harmless: only cells this run claims are called,
    a claimed cell is written once, and a paused or ended experiment's batch does nothing."""
    runner.run_batch(experiment_id, cell_ids)


@shared_task(name="experiments.sweep", queue="experiments", ignore_result=True)
def sweep() -> None:
    """Re-enqueue cells whose claim expired (a killed worker) or whose batch message was lost.
    Running it twice only enqueues some cells twice, which their claims make harmless."""
    services.experiment_sweep()
