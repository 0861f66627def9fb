"""The experiment CSV export (spreadsheet-safe and raw) and costs that add up exactly on SQLite too."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.experiments import services
from apps.experiments.models import Cell, CellStatus
from apps.experiments.tests.factories import build_experiment

pytestmark = pytest.mark.django_db

# Five cell costs whose float sum is 0.0005009999999999999: SQLite's "decimal" columns are floats.
COSTS = [Decimal("0.000109"), Decimal("0.000082"), Decimal("0.00011"), Decimal("0.000077"), Decimal("0.000123")]


@pytest.fixture
def finished(project, editor, simulated_endpoint):
    experiment = build_experiment(
        project,
        editor,
        [simulated_endpoint()],
        rows=5,
        records=[{"input": {"question": q}, "expected": "-0.25"} for q in ["-0.25", "=1+1", "+3", "@me", "plain"]],
    )
    services.experiment_start(experiment=experiment, actor=editor)
    cells = list(Cell.objects.filter(experiment=experiment).order_by("position"))
    for cell, cost in zip(cells, COSTS, strict=True):
        cell.status, cell.output, cell.cost = CellStatus.DONE, "-0.25", cost
        cell.tokens_in, cell.tokens_out, cell.latency_ms = 10, 2, 5
    cells[4].status, cells[4].error_kind, cells[4].error_message = CellStatus.FAILED, "timeout", "=took too long"
    Cell.objects.bulk_update(cells, ["status", "output", "cost", "tokens_in", "tokens_out", "latency_ms",
                                     "error_kind", "error_message"])  # fmt: skip
    services._record_totals(experiment.pk)
    return experiment


def _csv(client, experiment, query=""):
    response = client.get(f"/p/acme/experiments/{experiment.pk}/export.csv{query}")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_costs_are_stored_and_summed_exactly(finished):
    total = Cell.objects.filter(experiment=finished).aggregate(total=Sum("cost"))["total"]
    assert str(total) == "0.00050100"  # not 0.000500999999999999 nor 0.000501000000000000
    assert sorted(Cell.objects.filter(experiment=finished).values_list("cost", flat=True)) == sorted(COSTS)
    finished.refresh_from_db()
    assert str(finished.total_cost) == "0.000501"
    assert Cell.objects.filter(experiment=finished, cost__gt=Decimal("0.0001")).count() == 3


def test_the_api_serves_costs_without_float_noise(finished, project, editor, client):
    from apps.accounts.services import api_key_create

    _, key = api_key_create(project=project, name="ci", scope="read", actor=editor)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    body = client.get(f"/api/v1/experiments/{finished.pk}", **auth).json()
    assert body["cost"] == "0.00050100"
    assert body["totals"]["cost"] == "0.000501"
    assert body["variants"][0]["cost"] == "0.00050100"
    cells = client.get(f"/api/v1/experiments/{finished.pk}/cells", **auth).json()
    assert [c["cost"] for c in cells["cells"]] == [str(c.quantize(Decimal("1e-8"))) for c in COSTS]


def test_the_csv_export_leaves_numbers_alone_and_names_each_cells_origin(client_for, editor, finished):
    rows = _csv(client_for(editor), finished)
    first, failed = rows[0], rows[4]
    variant = finished.variants.select_related("prompt_version__prompt", "endpoint").get()
    cell = Cell.objects.get(experiment=finished, position=0)
    assert first["cell_id"] == str(cell.pk)
    assert first["prompt"] == variant.prompt_version.prompt.name
    assert first["prompt_version"] == str(variant.prompt_version.number)
    assert first["endpoint"] == variant.endpoint.name
    assert first["output"] == "-0.25" and first["expected"] == "-0.25"  # a number, not '-0.25
    assert first["cost"] == "0.00010900"
    assert [r["input"] for r in rows] == [
        '{"question": "-0.25"}', '{"question": "=1+1"}', '{"question": "+3"}', '{"question": "@me"}',
        '{"question": "plain"}',
    ]  # fmt: skip
    assert failed["error_kind"] == "timeout" and failed["error"] == "'=took too long"  # formulas stay neutralised


def test_the_raw_export_is_what_pandas_reads(client_for, editor, finished):
    import pandas as pd

    response = client_for(editor).get(f"/p/acme/experiments/{finished.pk}/export.csv?raw=1")
    assert response["Content-Disposition"] == f'attachment; filename="experiment-{finished.pk}-raw.csv"'
    frame = pd.read_csv(io.BytesIO(b"".join(response.streaming_content)))
    assert frame["output"].tolist()[:4] == [-0.25] * 4
    assert frame.loc[4, "error"] == "=took too long"
    assert frame["cost"].map(Decimal).sum().quantize(Decimal("1e-8")) == Decimal("0.00050100")
    page = client_for(editor).get(f"/p/acme/experiments/{finished.pk}/").content.decode()
    assert f"/p/acme/experiments/{finished.pk}/export.csv?raw=1" in page
