from __future__ import annotations

from django.core.management import call_command

from apps.traces.ingest import PROGRAM_SCORE_SOURCE
from apps.traces.models import Score, Span, Trace


def test_the_demo_seeds_days_of_traffic_linked_to_the_released_versions_once(db, settings):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo")
    traces = Trace.objects.filter(project__slug="demo")
    count = traces.count()
    assert count > 200
    days = {t.start_time.date() for t in traces}
    assert len(days) >= 3
    linked = dict(
        Span.objects.filter(kind="generation").values_list("prompt_name", "prompt_version__number").distinct()
    )
    assert linked == {"support-reply": 2, "summarize": 2, "classify-ticket": 1}
    assert traces.filter(status="error").exists() and Score.objects.exists()
    feedback = Score.objects.exclude(source=PROGRAM_SCORE_SOURCE)  # online evaluation's scores are not feedback
    assert traces.filter(feedback_count__gt=0).count() == feedback.values("trace_id").distinct().count()
    call_command("seed_demo")
    assert traces.count() == count
