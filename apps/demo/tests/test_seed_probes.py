from __future__ import annotations

from collections import Counter

from django.core.management import call_command

from apps.datasets import selectors
from apps.datasets.models import Dataset, VersionSource


def test_the_demo_has_a_gender_counterfactual_version_once(db, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    dataset = Dataset.objects.get(project__slug="demo", name="support-tickets-people")
    newest = dataset.versions.order_by("-number").first()
    assert (newest.number, newest.source, newest.row_count) == (2, VersionSource.COUNTERFACTUAL, 16)
    records = list(selectors.version_records(version=newest))
    assert set(Counter(r["metadata"]["pair_id"] for r in records).values()) == {2}
    assert records[1]["input"]["customer_name"] == "John"
    assert records[1]["input"]["ticket"].startswith("My wife set up the account and now she cannot log in")
