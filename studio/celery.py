"""The Celery app: JSON only, late acks, prefetch 1, queues `interactive`, `experiments` and `ingest`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery
from celery.signals import beat_init, worker_ready, worker_shutdown
from kombu import Exchange, Queue

from studio import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
broker.install()  # `filesystem://` is the embedded default's safe file transport (see studio/broker.py)

QUEUES = ("interactive", "experiments", "ingest")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue has its own exchange and key: a task routed to one queue is never delivered to the other.
app.conf.task_queues = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES)
app.conf.task_default_exchange = "interactive"
app.conf.task_default_routing_key = "interactive"
app.autodiscover_tasks()

# A test or a supervisor may ask the worker to say when it is ready to take work.
_READY_FILE = os.environ.get("STUDIO_WORKER_READY_FILE")


_heartbeat: dict[str, object] = {}


@worker_ready.connect
def _announce_ready(sender=None, **_kwargs) -> None:
    from apps.core import heartbeats

    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}:{os.getpid()}"
    _heartbeat.update(hostname=hostname, stop=heartbeats.start_thread(role="worker", hostname=hostname))
    if _READY_FILE:
        Path(_READY_FILE).write_text(str(os.getpid()))


@worker_shutdown.connect
def _withdraw_ready(**_kwargs) -> None:
    if _READY_FILE:
        Path(_READY_FILE).unlink(missing_ok=True)
    if "stop" in _heartbeat:
        from apps.core import heartbeats

        _heartbeat["stop"].set()
        try:
            heartbeats.withdraw(hostname=_heartbeat["hostname"])
        except Exception:  # shutting down with the database gone: the row goes stale instead
            logging.getLogger(__name__).info("could not withdraw the heartbeat of %s", _heartbeat["hostname"])


@beat_init.connect
def _beat_alive(**_kwargs) -> None:
    from apps.core import heartbeats

    heartbeats.start_thread(role="beat", hostname=f"beat@{os.uname().nodename}")
