from decimal import Decimal

import pytest

from apps.accounts.tests.factories import ProjectFactory
from apps.experiments import selectors, services
from apps.experiments.models import Cell, CellStatus, ExperimentStatus
from apps.experiments.tests.factories import build_experiment, make_rows

pytestmark = pytest.mark.django_db


def test_it_creates_every_cell_in_bulk_on_start(project, editor, simulated_endpoint):
    experiment = build_experiment(
        project, editor, [simulated_endpoint("one"), simulated_endpoint("two")], rows=7, repeats=3
    )
    assert experiment.estimated_calls == 42
    services.experiment_start(experiment=experiment, actor=editor)
    cells = Cell.objects.filter(experiment=experiment)
    assert cells.count() == 42
    assert cells.values("variant", "position", "repeat").distinct().count() == 42
    assert set(cells.values_list("status", flat=True)) == {CellStatus.PENDING}
    assert not cells.filter(enqueued_at__isnull=True).exists()
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.RUNNING and experiment.started_at


def test_it_reports_missing_variables_before_start_and_refuses_to_start(project, editor, simulated_endpoint):
    records = make_rows(3)
    records[1] = {"input": {"other": "x"}, "expected": None, "metadata": {}}
    experiment = build_experiment(project, editor, [simulated_endpoint()], records=records)
    missing = selectors.experiment_missing_variables(experiment=experiment)
    assert len(missing) == 1
    assert missing[0].problems == {"variable 'question' is missing": 1}
    assert missing[0].example_rows == [2]
    with pytest.raises(services.ExperimentError, match="variable 'question' is missing in 1 row"):
        services.experiment_start(experiment=experiment, actor=editor)
    assert not Cell.objects.filter(experiment=experiment).exists()


def test_it_estimates_calls_tokens_and_cost(project, editor, simulated_endpoint):
    endpoint = simulated_endpoint(price_input_per_mtok=Decimal("1"), price_output_per_mtok=Decimal("2"))
    experiment = build_experiment(project, editor, [endpoint], rows=4, repeats=2)
    estimate = selectors.experiment_estimate(experiment=experiment)
    assert estimate.calls == 8
    assert estimate.tokens_in > 0
    assert estimate.tokens_out == 8 * 256
    assert estimate.cost == (Decimal(estimate.tokens_in) * 1 + Decimal(estimate.tokens_out) * 2) / 1_000_000


def test_it_refuses_another_projects_endpoint(project, editor, simulated_endpoint):
    foreign = simulated_endpoint(for_project=ProjectFactory(slug="elsewhere"))
    with pytest.raises(services.ExperimentError, match="another project"):
        build_experiment(project, editor, [foreign])


def test_it_refuses_duplicate_variant_names_and_bad_repeats(project, editor, simulated_endpoint):
    endpoint = simulated_endpoint()
    experiment = build_experiment(project, editor, [endpoint])
    variant = experiment.variants.get()
    spec = services.VariantSpec("A", variant.prompt_version, endpoint)
    with pytest.raises(services.ExperimentError, match="different"):
        services.experiment_create(
            project=project, name="x", dataset_version=experiment.dataset_version, variants=[spec, spec], actor=editor
        )
    with pytest.raises(services.ExperimentError, match="Repeats"):
        services.experiment_create(
            project=project,
            name="x",
            dataset_version=experiment.dataset_version,
            variants=[spec],
            repeats=0,
            actor=editor,
        )


def test_pause_resume_and_cancel_change_state_once(project, editor, simulated_endpoint):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=3)
    services.experiment_start(experiment=experiment, actor=editor)
    services.experiment_pause(experiment=experiment, actor=editor)
    with pytest.raises(services.ExperimentError):
        services.experiment_pause(experiment=experiment, actor=editor)
    services.experiment_resume(experiment=experiment, actor=editor)
    services.experiment_cancel(experiment=experiment, actor=editor)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.CANCELLED
    assert set(Cell.objects.filter(experiment=experiment).values_list("status", flat=True)) == {CellStatus.CANCELLED}
    with pytest.raises(services.ExperimentError, match="already ended"):
        services.experiment_cancel(experiment=experiment, actor=editor)
