from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apps.monitoring import alerts, drift
from apps.monitoring.tests.test_views import _send


def test_metrics_drift_and_alerts_read_over_rest(api, make_key, released):
    project = released.project
    _send(project, 30, errors=6, thumbs=0.5)
    client = api(make_key("read"))
    body = client.get("/api/v1/metrics?prompt=greet&range=24h").json()
    assert body["overall"]["volume"] == 30 and body["overall"]["error_rate"] == 0.2 and body["step"] == "hour"
    assert body["versions"][0]["version"] == "greet v1" and body["versions"][0]["points"][0]["at"]
    thumbs = body["scores"][0]
    assert thumbs["name"] == "thumbs" and thumbs["total"]["n"] == 30 and thumbs["total"]["low"] < 0.5
    bad = client.get("/api/v1/metrics?range=forever")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_filter" and "range must be" in bad.json()["detail"]

    now = datetime.now(UTC)
    _send(project, 60, start=now - timedelta(hours=30), variables=lambda i: {"tier": "free"})
    _send(project, 60, start=now - timedelta(hours=3), variables=lambda i: {"tier": "pro" if i % 2 else "free"})
    report = drift.report_create(prompt=released, window_hours=24)
    listed = client.get("/api/v1/drift?prompt=greet").json()["reports"]
    assert listed[0]["id"] == report.pk and listed[0]["findings"][0]["metric"] == "tier"
    one = client.get(f"/api/v1/drift/{report.pk}").json()
    assert one["tests"] and all("q" in t for t in one["tests"])
    assert client.get("/api/v1/drift/999999").status_code == 404

    rule = alerts.rule_create(project=project, actor="test", name="errors", metric="error_rate", operator="above",
                              threshold=0.01, window_hours=2, min_volume=5)  # fmt: skip
    alerts.rule_evaluate(rule)
    got = client.get("/api/v1/alerts?status=open").json()["alerts"]
    assert got[0]["rule"]["name"] == "errors" and got[0]["status"] == "open"
    assert client.get("/api/v1/alerts?status=sleeping").status_code == 400
    assert api("nope").get("/api/v1/alerts").status_code == 401


def test_online_rules_read_over_rest(api, make_key, released, simulated_endpoint, sim_server):
    from apps.monitoring import online
    from apps.monitoring.models import OnlineEvaluation
    from apps.monitoring.tests.test_online import _rule, _traffic

    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(released.project, released, judge, sample_rate=1.0, daily_max_evaluations=4)
    _traffic(released.project, 6)
    online.evaluations_run(ids=list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True)))
    client = api(make_key("read"))
    listed = client.get("/api/v1/online-rules?prompt=greet").json()["rules"]
    assert listed[0]["name"] == "polite" and listed[0]["budget"]["evaluations"] == 4
    assert listed[0]["budget"]["skipped"] == 2 and listed[0]["evaluators"][0]["score_name"] == "polite.judge"
    one = client.get(f"/api/v1/online-rules/{rule.pk}").json()
    assert one["outcomes"] == {"done": 4, "skipped": 2}
    assert {s["score_name"]: s["n"] for s in one["scores"]} == {"polite.judge": 4, "polite.greets": 4}
    assert len(one["recent"]) == 6 and one["calibration"]["human_score"] is None
    assert client.get("/api/v1/online-rules/999999").status_code == 404
