import time
import uuid

import pytest

from apps.core.models import WorkerHeartbeat
from apps.core.tasks import heartbeat


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.worker
def test_it_runs_a_task_on_a_real_worker_process(celery_worker):
    token = uuid.uuid4().hex
    heartbeat.delay(token=token)
    assert _wait_for(lambda: WorkerHeartbeat.objects.filter(token=token).exists())


def test_each_queue_has_its_own_route():
    from studio.celery import app

    routes = {queue.name: (queue.exchange.name, queue.routing_key) for queue in app.conf.task_queues}
    assert routes == {
        "interactive": ("interactive", "interactive"),
        "experiments": ("experiments", "experiments"),
        "ingest": ("ingest", "ingest"),
    }


@pytest.mark.worker
def test_a_task_sent_to_one_queue_runs_once(start_worker):
    """A worker on `experiments` only must not receive what was sent to `interactive`."""
    worker = start_worker(queues="experiments")
    token = uuid.uuid4().hex
    heartbeat.apply_async(kwargs={"token": token}, queue="interactive")
    time.sleep(3)
    assert not WorkerHeartbeat.objects.filter(token=token).exists()
    heartbeat.apply_async(kwargs={"token": token}, queue="experiments")
    assert _wait_for(lambda: WorkerHeartbeat.objects.filter(token=token).exists())
    worker.stop()


@pytest.mark.worker
def test_a_real_worker_reports_itself_alive_and_withdraws_when_stopped(start_worker):
    from apps.core import heartbeats

    worker = start_worker()
    assert _wait_for(lambda: heartbeats.status("worker").ok)
    assert WorkerHeartbeat.objects.filter(role="worker", pid=worker.pid).exists()
    worker.stop()
    assert _wait_for(lambda: not WorkerHeartbeat.objects.filter(role="worker", pid=worker.pid).exists(), 15)
