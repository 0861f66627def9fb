from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from apps.experiments import runner, services

logger = logging.getLogger(__name__)


@shared_task(name="experiments.run_batch", queue="experiments", acks_late=True, ignore_result=True)
def run_batch(experiment_id: int, cell_ids: list[int]) -> None:
    """Pull the experiment's cells, starting with these, until none is left. Running it twice is harmless:
    only cells this run claims are called, a claimed cell is written once, and a paused or ended
    experiment's message does nothing."""
    runner.run_batch(experiment_id, cell_ids)


@shared_task(name="experiments.sweep", queue="experiments", ignore_result=True)
def sweep() -> None:
    """Re-enqueue cells whose claim expired (a killed worker) or whose batch message was lost.
    Running it twice only enqueues some cells twice, which their claims make harmless."""
    services.experiment_sweep()


# Every worker sweeps too, from its main process, so expired claims come back even while beat is down.
_sweeper_stop = threading.Event()


def _sweep_forever() -> None:
    from django.db import close_old_connections

    while not _sweeper_stop.wait(settings.EXPERIMENT_SWEEP_SECONDS):
        try:
            services.experiment_sweep()
        except Exception:  # the database may be away for a moment: the next round tries again
            logger.warning("the worker's sweep failed", exc_info=True)
        finally:
            close_old_connections()


@worker_ready.connect
def _start_sweeper(**_kwargs) -> None:
    _sweeper_stop.clear()
    threading.Thread(target=_sweep_forever, name="experiments-sweeper", daemon=True).start()


@worker_shutdown.connect
def _stop_sweeper(**_kwargs) -> None:
    _sweeper_stop.set()


@shared_task(name="experiments.explain_output", queue="interactive", acks_late=True, ignore_result=True)
def explain_output(explanation_id: int) -> None:
    """Occlusion and token sensitivity of one output (one model call per variable and per word)."""
    from apps.experiments.probes import services as probe_services

    probe_services.explanation_run(explanation_id=explanation_id)
