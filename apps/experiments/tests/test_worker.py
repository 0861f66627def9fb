"""Experiments on real Celery worker processes against the simulated model server (real HTTP, real litellm)."""

import time

import pytest

from apps.experiments import services
from apps.experiments.models import Cell, CellStatus, ExperimentStatus
from apps.experiments.tests.factories import build_experiment

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST_RETRIES = {"GATEWAY_RETRY_BASE_SECONDS": "0.05", "GATEWAY_RETRY_MAX_SECONDS": "0.3"}


def _wait_until_final(experiment, timeout=180.0, sweep_every=None):
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + (sweep_every or 0)
    while time.monotonic() < deadline:
        experiment.refresh_from_db()
        if experiment.is_final:
            return experiment
        if sweep_every and time.monotonic() >= next_sweep:
            services.experiment_sweep()  # what beat does every EXPERIMENT_SWEEP_SECONDS
            next_sweep = time.monotonic() + sweep_every
        time.sleep(0.3)
    raise AssertionError(f"experiment still {experiment.status} after {timeout}s: {_counts(experiment)}")


def _counts(experiment):
    return {s: Cell.objects.filter(experiment=experiment, status=s).count() for s in CellStatus.values}


def test_it_runs_two_prompts_by_two_models_end_to_end(start_worker, project, editor, simulated_endpoint, sim_server):
    start_worker(env_overrides=FAST_RETRIES)
    endpoints = [
        simulated_endpoint("echo", "openai/echo", max_concurrency=8),
        simulated_endpoint("upper", "openai/upper", max_concurrency=8),
    ]
    experiment = build_experiment(
        project,
        editor,
        endpoints,
        rows=50,
        repeats=2,
        prompt_count=2,
        evaluators=[
            services.EvaluatorSpec("exact", "exact_match", {}),
            services.EvaluatorSpec("json", "valid_json", {}),
        ],
    )
    services.experiment_start(experiment=experiment, actor=editor)
    experiment = _wait_until_final(experiment)
    assert experiment.status == ExperimentStatus.FINISHED
    cells = Cell.objects.filter(experiment=experiment)
    assert cells.count() == 2 * 2 * 50 * 2
    assert _counts(experiment)[CellStatus.DONE] == 400
    assert cells.values("variant", "position", "repeat").distinct().count() == 400
    assert experiment.total_tokens_in == sum(cells.values_list("tokens_in", flat=True))
    assert experiment.total_tokens_out == sum(cells.values_list("tokens_out", flat=True))
    assert experiment.total_errors == 0
    # Repeats are independent calls, not a cache: every cell reached the model.
    assert len(sim_server.requests("/chat/completions")) == 400
    assert experiment.finished_at >= experiment.started_at


def test_it_survives_429s_500s_and_timeouts(start_worker, project, editor, simulated_endpoint, sim_server):
    start_worker(env_overrides=FAST_RETRIES)
    sim_server.configure(fail_429=0.08, fail_500=0.07, hang=0.05, hang_seconds=3, retry_after=0)
    endpoint = simulated_endpoint(max_concurrency=10, timeout_seconds=1, max_retries=6)
    experiment = build_experiment(project, editor, [endpoint], rows=100, repeats=2)
    services.experiment_start(experiment=experiment, actor=editor)
    experiment = _wait_until_final(experiment, timeout=240)
    counts = _counts(experiment)
    assert counts[CellStatus.PENDING] == counts[CellStatus.RUNNING] == 0
    assert counts[CellStatus.DONE] + counts[CellStatus.FAILED] == 200
    assert counts[CellStatus.DONE] / 200 >= 0.999 or counts[CellStatus.FAILED] <= 1
    for failed in Cell.objects.filter(experiment=experiment, status=CellStatus.FAILED):
        assert failed.error_kind and failed.error_message
    retried = Cell.objects.filter(experiment=experiment, attempts__gt=1).count()
    assert retried > 10  # the failures really happened and were retried
    assert experiment.total_errors == counts[CellStatus.FAILED]


def test_a_killed_worker_loses_nothing_and_writes_nothing_twice(
    start_worker, project, editor, simulated_endpoint, sim_server
):
    env = {**FAST_RETRIES, "EXPERIMENT_CLAIM_SECONDS": "4", "EXPERIMENT_BATCH_SIZE": "10"}
    first = start_worker(env_overrides=env)
    sim_server.configure(latency_ms=150)
    endpoint = simulated_endpoint(max_concurrency=4)
    experiment = build_experiment(project, editor, [endpoint], rows=60, repeats=2)
    services.experiment_start(experiment=experiment, actor=editor)
    deadline = time.monotonic() + 60
    while Cell.objects.filter(experiment=experiment, status=CellStatus.DONE).count() < 30:
        assert time.monotonic() < deadline, "the first worker made no progress"
        time.sleep(0.1)
    first.kill()  # kill -9, mid-batch: its claimed cells stay RUNNING until their claims expire
    stranded = Cell.objects.filter(experiment=experiment, status=CellStatus.RUNNING).count()
    start_worker(env_overrides=env)
    experiment = _wait_until_final(experiment, timeout=180, sweep_every=2)
    counts = _counts(experiment)
    assert experiment.status == ExperimentStatus.FINISHED, counts
    assert counts[CellStatus.DONE] == 120
    assert Cell.objects.filter(experiment=experiment).count() == 120
    # Only calls in flight when the worker died were made twice (at most the endpoint's concurrency).
    calls = len(sim_server.requests("/chat/completions"))
    assert 120 <= calls <= 120 + 4, (calls, stranded)


def test_endpoint_concurrency_is_bounded_across_workers(start_worker, project, editor, simulated_endpoint, sim_server):
    start_worker(env_overrides=FAST_RETRIES)
    start_worker(env_overrides=FAST_RETRIES)
    sim_server.configure(latency_ms=100)
    endpoint = simulated_endpoint(max_concurrency=3)
    experiment = build_experiment(project, editor, [endpoint], rows=60)
    services.experiment_start(experiment=experiment, actor=editor)
    experiment = _wait_until_final(experiment)
    assert experiment.status == ExperimentStatus.FINISHED
    assert sim_server.peak_in_flight == 3  # two workers, each able to run a whole batch at once, share 3 slots


def _pool_children(worker) -> list[int]:
    children = []
    for stat in __import__("pathlib").Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == worker.pid:
            children.append(int(stat.parent.name))
    return children


def test_a_killed_pool_childs_cells_come_back_in_seconds_with_the_default_lease(
    start_worker, project, editor, simulated_endpoint, sim_server
):
    """No sweep from the test and the default lease: the worker's own pullers and sweeper take the cells back."""
    import os
    import signal

    worker = start_worker(env_overrides=FAST_RETRIES)
    sim_server.configure(latency_ms=150)
    endpoint = simulated_endpoint(max_concurrency=4)
    experiment = build_experiment(project, editor, [endpoint], rows=60, repeats=2)
    services.experiment_start(experiment=experiment, actor=editor)
    deadline = time.monotonic() + 60
    while Cell.objects.filter(experiment=experiment, status=CellStatus.DONE).count() < 30:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.1)
    for child in _pool_children(worker):
        os.kill(child, signal.SIGKILL)  # the main process stays and starts new pool children
    killed_at = time.monotonic()
    experiment = _wait_until_final(experiment, timeout=120)
    took = time.monotonic() - killed_at
    counts = _counts(experiment)
    assert experiment.status == ExperimentStatus.FINISHED and counts[CellStatus.DONE] == 120, counts
    # The old 60 s lease plus a 30 s sweep took 60-90 s; now the 12 s lease, plus new pool children starting
    # (importing Django and litellm takes 10-20 s on a busy two-core machine).
    assert took < 55, f"{took:.0f} s after the kill"
    assert 120 <= len(sim_server.requests("/chat/completions")) <= 120 + 2 * 4


def test_expired_claims_come_back_while_beat_is_down(start_worker, project, editor, simulated_endpoint, sim_server):
    """The whole worker is killed and no beat runs: the next worker sweeps and finishes the experiment."""
    env = {**FAST_RETRIES, "EXPERIMENT_CLAIM_SECONDS": "4", "EXPERIMENT_SWEEP_SECONDS": "2"}
    first = start_worker(env_overrides=env)
    sim_server.configure(latency_ms=150)
    endpoint = simulated_endpoint(max_concurrency=4)
    experiment = build_experiment(project, editor, [endpoint], rows=60, repeats=2)
    services.experiment_start(experiment=experiment, actor=editor)
    deadline = time.monotonic() + 60
    while Cell.objects.filter(experiment=experiment, status=CellStatus.DONE).count() < 30:
        assert time.monotonic() < deadline, "the first worker made no progress"
        time.sleep(0.1)
    first.kill()
    start_worker(env_overrides=env)
    experiment = _wait_until_final(experiment, timeout=120)  # no sweep_every: nothing but the worker sweeps
    assert experiment.status == ExperimentStatus.FINISHED
    assert _counts(experiment)[CellStatus.DONE] == 120
