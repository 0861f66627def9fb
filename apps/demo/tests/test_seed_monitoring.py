from __future__ import annotations

from django.core.management import call_command

from apps.monitoring import rollups
from apps.monitoring.models import Alert, DriftReport, HourlyRollup


def test_the_demo_has_rollups_a_drift_finding_and_an_open_alert_once(db, settings):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo")
    report = DriftReport.objects.get()
    assert any(t["metric"] == "product" and t["finding"] for t in report.tests), [t["line"] for t in report.tests]
    alert = Alert.objects.get()
    assert alert.status == "open", alert.message
    project_id = report.project_id
    stored = rollups.stored_rollups(project_id=project_id)
    assert stored["latency"] == rollups.raw_aggregate(project_id=project_id)["latency"]
    count = HourlyRollup.objects.count()
    call_command("seed_demo")
    assert DriftReport.objects.count() == 1 and Alert.objects.count() == 1 and HourlyRollup.objects.count() == count


def test_the_demo_has_online_evaluation_rules_with_scores_and_a_calibration_once(db, settings):
    from apps.monitoring import calibration
    from apps.monitoring.models import OnlineEvalRule, OnlineEvaluation, ScoreRollup

    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo")
    checks = OnlineEvalRule.objects.get(name="support-checks")
    assert set(OnlineEvalRule.objects.values_list("name", flat=True)) == {"support-checks", "support-judge"}
    statuses = set(OnlineEvaluation.objects.filter(rule=checks).values_list("status", flat=True))
    assert statuses == {"done"}
    assert ScoreRollup.objects.filter(name="support-checks.short").exists()
    found = calibration.rule_calibration(rule=checks)
    assert found["human_score"] == "thumbs" and all(e["n"] > 0 for e in found["evaluators"])
    count = OnlineEvaluation.objects.count()
    call_command("seed_demo")
    assert OnlineEvaluation.objects.count() == count
