"""The traces page, a trace's page, adding generations to a dataset, and the prompt page's production volume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_records
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.traces import ingest
from apps.traces.models import Span
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id


@pytest.fixture
def traffic(project, released):
    """Two traces: one with two generations of greet v2 (staging), one failed call of v1 (production)."""
    first, second = new_id(), new_id()
    base = datetime.now(UTC) - timedelta(minutes=30)
    document = {
        "traces": [{"id": first, "name": "greeting"}, {"id": second, "name": "farewell"}],
        "spans": [{"id": "root", "trace_id": first, "name": "request", "start_time": base.isoformat(),
                   "end_time": (base + timedelta(seconds=3)).isoformat()}],
        "generations": [
            generation(first, span_id="a", parent_id="root", start=base, prompt={"name": "greet", "version": 2},
                       variables={"name": "Ada", "age": 36}, output="Hi Ada, you are 36"),
            generation(first, span_id="b", parent_id="root", start=base + timedelta(seconds=1),
                       prompt={"name": "greet", "version": 2}, variables={"name": "Lin", "age": 7}, output="Hi Lin"),
            generation(second, span_id="c", start=base + timedelta(minutes=1), status="error",
                       status_message="rate limited", prompt={"name": "greet", "label": "production"},
                       output="Bye, refund ada@example.com"),
        ],
        "scores": [{"trace_id": first, "span_id": "a", "name": "thumbs", "value": True, "comment": "nice"}],
    }  # fmt: skip
    spans, traces, scores = native_batch(document)
    batch = ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores)
    ingest.batch_expand(batch_id=batch.pk)
    return {"first": first, "second": second}


def test_it_lists_and_filters_traces(client_for, member, traffic):
    client = client_for(member("viewer"))
    page = client.get("/p/acme/traces/").content.decode()
    assert "greeting" in page and "farewell" in page
    page = client.get("/p/acme/traces/?status=error").content.decode()
    assert "farewell" in page and "greeting" not in page
    page = client.get("/p/acme/traces/?q=refund").content.decode()
    assert "farewell" in page and "greeting" not in page
    page = client.get("/p/acme/traces/?version=2&prompt=greet", HTTP_HX_REQUEST="true").content.decode()
    assert "greeting" in page and "farewell" not in page and "<html" not in page
    page = client.get("/p/acme/traces/?since=yesterday").content.decode()
    assert "since must be an ISO 8601 time" in page


def test_a_trace_page_shows_the_tree_generations_scores_and_the_linked_version(client_for, member, traffic):
    page = client_for(member("viewer")).get(f"/p/acme/traces/{traffic['first']}/").content.decode()
    assert page.count('class="span-row"') == 3 and page.count('class="card mb-3 generation"') == 2
    assert 'href="/p/acme/prompts/greet/v/2/"' in page
    assert "thumbs: yes" in page and "Hi Lin" in page
    assert client_for(member("viewer")).get("/p/acme/traces/nope/").status_code == 404


def test_an_editor_adds_generations_to_a_dataset(client_for, editor, traffic, project):
    dataset = DatasetFactory(project=project, name="greetings")
    make_dataset_version(dataset, [record(name="Bo", age=1, expected="Hi Bo")])
    ids = list(Span.objects.filter(span_id__in=["a", "b"]).values_list("pk", flat=True))
    response = client_for(editor).post("/p/acme/traces/-/to-dataset/", {"generation": ids, "dataset": dataset.pk})
    assert response.status_code == 302
    version = DatasetVersion.objects.get(dataset=dataset, number=2)
    rows = list(version_records(version=version))
    assert len(rows) == 3
    assert rows[1]["input"] == {"name": "Ada", "age": 36} and rows[1]["expected"] == "Hi Ada, you are 36"
    assert rows[1]["metadata"]["trace_id"] == traffic["first"] and rows[2]["metadata"]["span_id"] == "b"


def test_a_viewer_cannot_add_to_a_dataset(client_for, member, traffic, project):
    dataset = DatasetFactory(project=project)
    response = client_for(member("viewer")).post(
        "/p/acme/traces/-/to-dataset/", {"generation": [1], "dataset": dataset.pk}
    )
    assert response.status_code == 403


def test_the_prompt_page_shows_production_volume_per_version(client_for, member, traffic):
    page = client_for(member("viewer")).get("/p/acme/prompts/greet/").content.decode()
    assert 'id="production-volume"' in page
    assert '<td>v2</td><td class="text-end">2</td>' in page and '<td>v1</td><td class="text-end">1</td>' in page


def test_an_admin_sets_retention_and_personal_data_handling(client_for, member, project):
    from apps.audit.models import AuditEvent
    from apps.traces.models import TraceSettings

    admin = client_for(member("admin"))
    assert admin.get("/p/acme/traces/-/settings/").status_code == 200
    response = admin.post("/p/acme/traces/-/settings/", {"retention_days": "0", "pii_mode": "mask"})
    assert response.status_code == 400 and "1 to 3650 days" in response.content.decode()
    admin.post("/p/acme/traces/-/settings/", {"retention_days": "14", "pii_mode": "mask"})
    assert (TraceSettings.objects.get(project=project).retention_days, TraceSettings.objects.get().pii_mode) == (
        14,
        "mask",
    )
    assert AuditEvent.objects.filter(action="traces.settings_changed").exists()
    assert client_for(member("editor")).get("/p/acme/traces/-/settings/").status_code == 403
