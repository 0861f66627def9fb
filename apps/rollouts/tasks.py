from __future__ import annotations

from celery import shared_task

from apps.rollouts import selectors, services


@shared_task(name="rollouts.watch", ignore_result=True)
def watch() -> dict[int, str]:
    """Look once at every running canary (beat, every ROLLOUT_WATCH_SECONDS): roll back or promote.

    Running twice at once or in a row is harmless: each canary is evaluated under its row lock, and a
    finished canary or a fresh step (its volume counted from the step's start) makes the second look a no-op.
    """
    return {rollout_id: services.rollout_evaluate(rollout_id=rollout_id) for rollout_id in selectors.running_ids()}
