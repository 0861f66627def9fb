"""The batch runner in this process against the simulated model server over real HTTP (through litellm)."""

from decimal import Decimal

import pytest

from apps.experiments import runner, services
from apps.experiments.models import Cell, CellStatus, ExperimentStatus, Score
from apps.experiments.tests.factories import build_experiment, make_rows
from apps.providers import local_models
from apps.providers import services as provider_services

pytestmark = pytest.mark.django_db(transaction=True)


def _run_all(experiment):
    ids = list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True))
    return runner.run_batch(experiment.pk, ids)


def test_it_runs_a_batch_writes_outputs_scores_and_finishes(project, editor, simulated_endpoint):
    experiment = build_experiment(
        project,
        editor,
        [simulated_endpoint("echo", "openai/echo"), simulated_endpoint("upper", "openai/upper")],
        rows=5,
        evaluators=[services.EvaluatorSpec("exact", "exact_match", {"case_sensitive": True})],
    )
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FINISHED
    cells = Cell.objects.filter(experiment=experiment)
    assert set(cells.values_list("status", flat=True)) == {CellStatus.DONE}
    echo = cells.get(variant__name="A", position=0)
    assert echo.output == "what is item 0" and echo.tokens_in and echo.tokens_out and echo.latency_ms is not None
    assert echo.request["messages"][-1]["content"] == "what is item 0"
    assert Score.objects.get(cell=echo).passed is True
    assert Score.objects.get(cell=cells.get(variant__name="B", position=0)).passed is False
    assert experiment.total_tokens_in == sum(cells.values_list("tokens_in", flat=True))
    assert experiment.total_errors == 0


def test_an_error_that_will_not_heal_fails_the_cell_at_once(project, editor, simulated_endpoint, sim_server):
    records = make_rows(2)
    records[0]["input"]["question"] = "please [[fail:400]]"
    experiment = build_experiment(project, editor, [simulated_endpoint()], records=records)
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    failed = Cell.objects.get(experiment=experiment, position=0)
    assert failed.status == CellStatus.FAILED and failed.error_kind == "bad_request" and failed.attempts == 1
    assert Cell.objects.get(experiment=experiment, position=1).status == CellStatus.DONE


def test_a_rate_limited_call_is_retried_and_counted(project, editor, simulated_endpoint):
    records = make_rows(1)
    records[0]["input"]["question"] = "busy [[fail:429 x2]]"
    experiment = build_experiment(project, editor, [simulated_endpoint(max_retries=3)], records=records)
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    cell = Cell.objects.get(experiment=experiment)
    assert cell.status == CellStatus.DONE and cell.attempts == 3


def test_a_batch_delivered_twice_writes_each_cell_once(project, editor, simulated_endpoint, sim_server):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=4)
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    calls = len(sim_server.requests("/chat/completions"))
    second = _run_all(experiment)
    assert second == {"claimed": 0}  # the experiment is finished; nothing is claimed again
    assert len(sim_server.requests("/chat/completions")) == calls == 4


def test_an_evaluator_that_fails_marks_the_score_not_the_cell(project, editor, simulated_endpoint):
    experiment = build_experiment(
        project,
        editor,
        [simulated_endpoint()],
        rows=1,
        evaluators=[services.EvaluatorSpec("bad regex", "regex", {"pattern": "("})],
    )
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    cell = Cell.objects.get(experiment=experiment)
    score = Score.objects.get(cell=cell)
    assert cell.status == CellStatus.DONE
    assert score.value is None and "does not compile" in score.error


def test_the_budget_cap_stops_the_experiment(project, editor, simulated_endpoint):
    endpoint = simulated_endpoint(
        price_input_per_mtok=Decimal("100000"), price_output_per_mtok=Decimal("0"), max_concurrency=1
    )
    experiment = build_experiment(project, editor, [endpoint], rows=30, budget=Decimal("2"))
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.STOPPED and "budget" in experiment.status_reason
    cells = Cell.objects.filter(experiment=experiment)
    done = cells.filter(status=CellStatus.DONE).count()
    assert 1 <= done < 30
    assert cells.filter(status=CellStatus.CANCELLED).count() == 30 - done
    # A call that would start past the budget does not start: with one call at a time, spending stops at 2.
    assert experiment.total_cost == Decimal("2")


def test_failed_cells_can_be_rerun_alone(project, editor, simulated_endpoint, sim_server):
    records = make_rows(3)
    records[2]["input"]["question"] = "x [[fail:500 x3]]"
    experiment = build_experiment(project, editor, [simulated_endpoint(max_retries=1)], records=records)
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    assert Cell.objects.get(experiment=experiment, position=2).status == CellStatus.FAILED
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FINISHED and experiment.total_errors == 1
    before = {c.pk: c.output for c in Cell.objects.filter(experiment=experiment, status=CellStatus.DONE)}
    assert services.experiment_rerun_failed(experiment=experiment, actor=editor) == 1
    _run_all(experiment)
    rerun = Cell.objects.get(experiment=experiment, position=2)
    assert rerun.status == CellStatus.DONE  # the third attempt of that request succeeds
    assert {c.pk: c.output for c in Cell.objects.filter(experiment=experiment, pk__in=before)} == before
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FINISHED and experiment.total_errors == 0


def test_a_paused_experiment_runs_nothing_until_resumed(project, editor, simulated_endpoint, sim_server):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=3)
    services.experiment_start(experiment=experiment, actor=editor)
    services.experiment_pause(experiment=experiment, actor=editor)
    assert _run_all(experiment) == {"claimed": 0}
    assert not sim_server.requests("/chat/completions")
    services.experiment_resume(experiment=experiment, actor=editor)
    _run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FINISHED


def test_the_sweep_frees_expired_claims(project, editor, simulated_endpoint):
    from datetime import timedelta

    from django.utils import timezone

    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=2)
    services.experiment_start(experiment=experiment, actor=editor)
    Cell.objects.filter(experiment=experiment).update(
        status=CellStatus.RUNNING, claim_token="dead", claim_expires_at=timezone.now() - timedelta(seconds=1)
    )
    result = services.experiment_sweep()
    assert result["freed"] == 2 and result["requeued"] == 2
    assert set(Cell.objects.filter(experiment=experiment).values_list("status", flat=True)) == {CellStatus.PENDING}


def test_a_local_model_still_installing_fails_its_cells_with_its_progress(project, editor, settings, tmp_path):
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODEL_COMPLETION = tmp_path, "gemma-3-270m"
    gemma = local_models.GEMMA_3_270M
    local_models.write_status("installing", spec=gemma, step="joining the parts and checking the SHA-256", progress=92)
    endpoint = provider_services.local_endpoint_ensure(project=project, spec=gemma, actor=editor)
    experiment = build_experiment(project, editor, [endpoint], rows=2)
    services.experiment_start(experiment=experiment, actor=editor)
    _run_all(experiment)
    cells = Cell.objects.filter(experiment=experiment)
    assert set(cells.values_list("status", flat=True)) == {CellStatus.FAILED}
    assert all("is still installing (92%): joining the parts" in c.error_message for c in cells)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ question }}{{ 2 ** 10000000 }}", "numbers are limited"),
        (
            "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{{ question }}",
            "time limit",
        ),  # fmt: skip
    ],
)
def test_a_hostile_template_fails_its_cells_within_the_render_limit(project, editor, simulated_endpoint, template,
                                                                    message):  # fmt: skip
    import time

    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=2, template=template)
    services.experiment_start(experiment=experiment, actor=editor)
    started = time.monotonic()
    _run_all(experiment)
    assert time.monotonic() - started < 10  # two renders of at most 300 ms each, on a shared machine
    for cell in Cell.objects.filter(experiment=experiment):
        assert cell.status == CellStatus.FAILED and cell.error_kind == "bad_request"
        assert message in cell.error_message


def test_a_claim_takes_each_cell_once_in_order_with_its_row(project, editor, simulated_endpoint):
    from datetime import timedelta

    from django.utils import timezone

    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=5)
    services.experiment_start(experiment=experiment, actor=editor)
    ids = list(Cell.objects.filter(experiment=experiment).order_by("position").values_list("pk", flat=True))

    given = runner._claim(experiment.pk, "t-given", cell_ids=ids[3:])
    assert [c.cell_id for c in given] == ids[3:]
    assert [c.item_input for c in given] == [{"question": "what is item 3"}, {"question": "what is item 4"}]
    assert given[0].expected == "what is item 3"
    assert runner._claim(experiment.pk, "t-again", cell_ids=ids[3:]) == []  # held: not claimed twice

    pending = runner._claim(experiment.pk, "t-pending", limit=2)
    assert [c.cell_id for c in pending] == ids[:2]  # the experiment's order: by row
    rest = runner._claim(experiment.pk, "t-rest", limit=10)
    assert [c.cell_id for c in rest] == ids[2:3]
    assert runner._claim(experiment.pk, "t-none", limit=10) == []
    assert runner._claim(experiment.pk, "t-none", limit=10, expired=True) == []  # no claim has expired

    Cell.objects.filter(pk=ids[0]).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    taken_over = runner._claim(experiment.pk, "t-expired", limit=10, expired=True)
    assert [c.cell_id for c in taken_over] == ids[:1]
    assert Cell.objects.get(pk=ids[0]).claim_token == "t-expired"
    tokens = dict(Cell.objects.filter(experiment=experiment).values_list("pk", "claim_token"))
    assert [tokens[pk] for pk in ids] == ["t-expired", "t-pending", "t-rest", "t-given", "t-given"]
    assert set(Cell.objects.filter(experiment=experiment).values_list("status", flat=True)) == {CellStatus.RUNNING}


def test_two_pullers_claiming_at_once_each_get_cells(project, editor, simulated_endpoint):
    """A claim whose rows another puller is claiming in an open transaction takes the next rows at once (on
    PostgreSQL, where the second UPDATE would otherwise wait, find its rows taken, claim nothing and stop its
    puller as if nothing were pending). SQLite writes one statement at a time: nothing to race there."""
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing statement at a time")
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=6)
    services.experiment_start(experiment=experiment, actor=editor)
    first_claimed, go_on = threading.Event(), threading.Event()
    got: dict[str, list[int]] = {}

    def first_puller():
        try:
            with transaction.atomic():
                got["first"] = [c.cell_id for c in runner._claim(experiment.pk, "t-first", limit=3)]
                first_claimed.set()
                go_on.wait(10)  # its rows stay locked until it commits
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_puller)
    thread.start()
    assert first_claimed.wait(10)
    second = threading.Thread(
        target=lambda: got.update(second=[c.cell_id for c in runner._claim(experiment.pk, "t-second", limit=3)])
    )
    second.start()
    second.join(5)
    blocked = second.is_alive()
    go_on.set()
    thread.join(10)
    second.join(10)
    assert not blocked, "the second claim waited for the first one's locks"
    assert len(got["first"]) == 3 and len(got["second"]) == 3 and not set(got["first"]) & set(got["second"])
