"""The cost field on PostgreSQL: many rows go in as one array per column, and costs come back exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.experiments.models import Cell

pytestmark = pytest.mark.django_db


def test_bulk_create_of_rows_with_a_cost_sends_one_array_per_column(project, editor, simulated_endpoint):
    if connection.vendor != "postgresql":
        pytest.skip("UNNEST is PostgreSQL's bulk insert")
    from apps.datasets.models import DatasetVersionItem
    from apps.experiments.tests.factories import build_experiment

    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=1)
    variant = experiment.variants.first()
    item = DatasetVersionItem.objects.filter(version=experiment.dataset_version).first().item
    costs = [Decimal("0.00000001") * n for n in range(1, 4)]
    with CaptureQueriesContext(connection) as queries:
        Cell.objects.bulk_create(
            Cell(experiment=experiment, variant=variant, item=item, position=1000 + n, cost=cost)
            for n, cost in enumerate(costs)
        )
    insert = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT"))
    assert "UNNEST" in insert, insert[:300]
    stored = list(Cell.objects.filter(position__gte=1000).order_by("position").values_list("cost", flat=True))
    assert stored == costs
