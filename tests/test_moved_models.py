"""Runs, results, webhooks and deliveries moved to apps of their own without moving a row.

Each test rolls the database back to the migration before the move, writes rows the old way, migrates
forward, and reads them through the new app's models; the content types (admin history, permissions)
keep their ids.
"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_playground_runs_saved_in_providers_are_read_by_the_playground_app():
    from apps.playground.models import PlaygroundResult, PlaygroundRun

    content_type_id = ContentType.objects.get(app_label="playground", model="playgroundrun").pk
    ContentType.objects.filter(pk=content_type_id).update(app_label="providers")  # as before the move
    old = _migrate([("providers", "0003_endpoint_check")])
    try:
        project = old.get_model("accounts", "Project").objects.create(name="Old", slug="old")
        run = old.get_model("providers", "PlaygroundRun").objects.create(
            project=project, content={"kind": "text", "template": "Hi"}, variables={"name": "Ada"}
        )
        old.get_model("providers", "PlaygroundResult").objects.create(
            run=run, endpoint_name="Echo", model="openai/echo", output="Hi Ada", status="done"
        )
    finally:
        _migrate_to_latest()
    moved = PlaygroundRun.objects.get(pk=run.pk)
    assert moved.variables == {"name": "Ada"} and moved.project.slug == "old"
    assert PlaygroundResult.objects.get(run=moved).output == "Hi Ada"
    assert ContentType.objects.get(app_label="playground", model="playgroundrun").pk == content_type_id


def test_webhooks_saved_in_reviews_are_read_by_the_webhooks_app():
    from apps.webhooks.models import Webhook, WebhookDelivery

    content_type_id = ContentType.objects.get(app_label="webhooks", model="webhook").pk
    ContentType.objects.filter(pk=content_type_id).update(app_label="reviews")
    old = _migrate([("reviews", "0001_initial")])
    try:
        project = old.get_model("accounts", "Project").objects.create(name="Old", slug="old")
        hook = old.get_model("reviews", "Webhook").objects.create(
            project=project, url="https://hooks.example.com/studio", events=["label.released"], secret="s3cret"
        )
        old.get_model("reviews", "WebhookDelivery").objects.create(
            webhook=hook, event="label.released", delivery_id="d-1", body="{}", status="succeeded"
        )
    finally:
        _migrate_to_latest()
    moved = Webhook.objects.get(pk=hook.pk)
    assert (moved.url, moved.secret, moved.project.slug) == ("https://hooks.example.com/studio", "s3cret", "old")
    assert WebhookDelivery.objects.get(webhook=moved).delivery_id == "d-1"
    assert ContentType.objects.get(app_label="webhooks", model="webhook").pk == content_type_id
