from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import unescape

from django.core import mail

from apps.audit.models import AuditEvent
from apps.monitoring import alerts
from apps.monitoring.models import Alert, AlertRule
from apps.traces import ingest
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id
from apps.webhooks.models import Webhook, WebhookDelivery


def _send(project, n=30, *, version=1, errors=0, start=None, model="gpt-4o-mini", thumbs=None, variables=None):
    start = start or datetime.now(UTC) - timedelta(minutes=30)
    gens, scores = [], []
    for i in range(n):
        trace_id = new_id()
        item = generation(trace_id, start=start + timedelta(seconds=i), prompt={"name": "greet", "version": version},
                          model=model, variables=variables(i) if variables else {"name": "Ada"})  # fmt: skip
        if i < errors:
            item["status"] = "error"
        gens.append(item)
        if thumbs is not None:
            scores.append({"trace_id": trace_id, "name": "thumbs", "value": i % 10 < thumbs * 10})
    spans, traces, records = native_batch({"generations": gens, "scores": scores})
    batch = ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=records)
    ingest.batch_expand(batch_id=batch.pk)


def test_the_landing_page_after_login_is_the_projects_health(client_for, editor, released):
    _send(released.project, 20, errors=5, thumbs=0.7)
    client = client_for(editor)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == f"/p/{released.project.slug}/monitoring/"
    html = response.content.decode()
    assert 'id="health-volume">20<' in html and 'id="health-errors">25%<' in html
    assert 'id="chart-volume" data-figure="' in html and 'id="chart-score-thumbs"' in html
    assert "greet v1" in html and "<script>" not in html


def test_filters_narrow_the_figures_and_bad_ones_are_a_400(client_for, editor, released):
    project = released.project
    _send(project, 10, version=1)
    _send(project, 4, version=2, model="claude-3-5-haiku")
    client = client_for(editor)
    base = f"/p/{project.slug}/monitoring/"
    html = client.get(base, {"prompt": "greet", "version": "2", "range": "24h"}).content.decode()
    assert "greet v2" in html and "greet v1" not in html and ": 4 generations" in html
    html = client.get(base, {"prompt": "greet", "label": "production"}).content.decode()
    assert ": 10 generations" in html
    html = client.get(base, {"model": "claude-3-5-haiku"}).content.decode()
    assert ": 4 generations" in html
    old = client.get(base, {"since": (datetime.now(UTC) - timedelta(days=9)).isoformat(),
                            "until": (datetime.now(UTC) - timedelta(days=8)).isoformat()})  # fmt: skip
    assert old.status_code == 200 and 'id="no-metrics"' in old.content.decode()
    for params, words in (
        ({"range": "5y"}, "range must be one of"),
        ({"prompt": "nope"}, "no prompt named 'nope'"),
        ({"prompt": "greet", "version": "x"}, "version must be a positive whole number"),
        ({"since": "yesterday"}, "since must be an ISO 8601 time"),
    ):
        response = client.get(base, params)
        assert response.status_code == 400 and words in unescape(response.content.decode()), params
    swapped = client.get(base, {"range": "5y"}, HTTP_HX_REQUEST="true")  # htmx swaps only a 2xx answer
    assert swapped.status_code == 200 and 'id="filter-problem"' in swapped.content.decode()


def test_an_alert_opens_notifies_and_resolves_audited(client_for, editor, released, django_capture_on_commit_callbacks):
    project = released.project
    events = ["alert.opened", "alert.resolved"]
    Webhook.objects.create(project=project, url="https://hooks.example.com/x", events=events)
    client = client_for(editor)
    response = client.post(f"/p/{project.slug}/monitoring/alerts/rules/", {
        "name": "errors", "prompt": str(released.pk), "metric": "error_rate", "operator": "above", "threshold": "0.1",
        "window_hours": "1", "min_volume": "20", "email": "oncall@example.com"})  # fmt: skip
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    _send(project, 10, errors=5)
    assert alerts.rule_evaluate(rule) is None  # under the minimum volume
    _send(project, 20, errors=0)
    with django_capture_on_commit_callbacks(execute=True):
        alert = alerts.rule_evaluate(rule)  # 5 of 30
    assert alert is not None and alert.status == "open" and "16.7%" in alert.message
    assert alerts.rule_evaluate(rule) is None  # still open: not opened twice
    assert WebhookDelivery.objects.filter(event="alert.opened").count() == 1
    assert mail.outbox and "errors" in mail.outbox[0].subject and mail.outbox[0].to == ["oncall@example.com"]
    page = client.get(f"/p/{project.slug}/monitoring/alerts/{alert.pk}/").content.decode()
    assert 'id="alert-status">open<' in page
    client.post(f"/p/{project.slug}/monitoring/alerts/{alert.pk}/acknowledge/")
    assert Alert.objects.get().status == "acknowledged"
    _send(project, 200, errors=0)  # 5 of 230: below 10%
    assert alerts.rule_evaluate(rule).status == "resolved"
    assert WebhookDelivery.objects.filter(event="alert.resolved").count() == 1
    actions = set(AuditEvent.objects.filter(action__startswith="alert").values_list("action", flat=True))
    assert actions >= {"alert_rule.created", "alert.opened", "alert.acknowledged", "alert.resolved"}


def test_a_bad_rule_is_refused_with_a_reason(client_for, editor, released):
    client = client_for(editor)
    url = f"/p/{released.project.slug}/monitoring/alerts/rules/"
    base = {"name": "x", "metric": "drift_findings", "operator": "above", "threshold": "0", "window_hours": "24",
            "min_volume": "20"}  # fmt: skip
    response = client.post(url, base)
    assert response.status_code == 400 and "A drift rule needs a prompt" in unescape(response.content.decode())
    response = client.post(url, {**base, "metric": "error_rate", "email": "not-an-address"})
    assert response.status_code == 400 and "is not an e-mail address" in unescape(response.content.decode())
    response = client.post(url, {**base, "metric": "error_rate", "threshold": "lots"})
    assert response.status_code == 400 and AlertRule.objects.count() == 0


def test_a_drift_report_finds_a_shifted_variable(client_for, editor, released):
    project = released.project
    now = datetime.now(UTC)
    _send(project, 120, start=now - timedelta(hours=40), variables=lambda i: {"name": "Ada", "language": "en"})
    _send(project, 120, start=now - timedelta(hours=10),
          variables=lambda i: {"name": "Ada", "language": "de" if i % 3 == 0 else "en"})  # fmt: skip
    client = client_for(editor)
    form = {"prompt": str(released.pk), "window_hours": "24", "reference": "previous"}
    response = client.post(f"/p/{project.slug}/monitoring/drift/run/", form)
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "`language` shifted: 33% `de` now against 0% in the 24 hours before." in unescape(html)
    assert 'data-figure="' in html
    bad = client.post(f"/p/{project.slug}/monitoring/drift/run/", {"prompt": "999", "window_hours": "0",
                                                                  "reference": "previous"})  # fmt: skip
    assert bad.status_code == 400


def test_release_impact_compares_before_and_after_a_move(client_for, editor, released):
    from apps.prompts import services
    from apps.prompts.models import LabelMove

    project = released.project
    v2 = released.versions.get(number=2)
    services.label_move(prompt=released, label_name="production", version=v2, actor="test")
    move = LabelMove.objects.filter(label_name="production").first()
    _send(project, 40, version=1, start=move.created_at - timedelta(hours=2), errors=1)
    _send(project, 40, version=2, start=move.created_at + timedelta(minutes=1), errors=20)
    client = client_for(editor)
    html = client.get(f"/p/{project.slug}/monitoring/impact/{move.pk}/").content.decode()
    assert "Before: 40 generations" in html and "after: 40" in html
    assert "Error rate" in html and "worse" in html
    assert client.get(f"/p/{project.slug}/monitoring/impact/{move.pk}/", {"hours": "x"}).status_code == 400
    dashboard = client.get(f"/p/{project.slug}/monitoring/", {"prompt": "greet"}).content.decode()
    assert f"/monitoring/impact/{move.pk}/" in dashboard
    prompt_page = client.get(f"/p/{project.slug}/prompts/greet/").content.decode()
    assert f"/monitoring/impact/{move.pk}/" in prompt_page and 'id="prompt-dashboard-link"' in prompt_page
