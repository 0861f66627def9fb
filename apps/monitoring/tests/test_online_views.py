"""The online evaluation pages: create, edit, pause and delete a rule (audited); viewers read only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.monitoring import online
from apps.monitoring.models import OnlineEvalRule, OnlineEvaluation
from apps.monitoring.tests.test_online import RUBRIC, _traffic

pytestmark = pytest.mark.django_db(transaction=True)


def _form(released, judge, **changes):
    data = {
        "name": "polite",
        "prompt": str(released.pk),
        "label": "production",
        "sample_rate": "1",
        "daily_max_evaluations": "100",
        "daily_max_cost": "",
        "evaluators": json.dumps(
            [{"name": "judge", "kind": "llm_judge", "params": {"endpoint_id": judge.pk, "rubric": RUBRIC}}]
        ),  # fmt: skip
        "human_score_name": "",
        "human_pass_at": "0.5",
    }
    data.update(changes)
    return data


def test_an_editor_creates_a_rule_that_scores_new_traffic_and_sees_it_on_the_trace(
    project, released, simulated_endpoint, sim_server, client_for, editor
):
    judge = simulated_endpoint("Judge", "openai/echo")
    client = client_for(editor)
    response = client.post(reverse("monitoring:online_create", args=[project.slug]), _form(released, judge))
    rule = OnlineEvalRule.objects.get(project=project, name="polite")
    assert response.status_code == 302 and response["Location"].endswith(f"/monitoring/online/{rule.pk}/")
    assert AuditEvent.objects.filter(action="online_rule.created", object_id=str(rule.pk)).exists()
    (trace_id, _), *_ = _traffic(project, 3)
    online.evaluations_run(ids=list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True)))
    html = client.get(reverse("monitoring:online_detail", args=[project.slug, rule.pk])).content.decode()
    assert "3 scored, 0 errored" in html and "<code>polite.judge</code>" in html
    trace_page = client.get(reverse("traces:detail", args=[project.slug, trace_id])).content.decode()
    assert "polite.judge: 0" in trace_page and "judge: 1/5" in trace_page  # the first output is graded 1
    listing = client.get(reverse("monitoring:online", args=[project.slug])).content.decode()
    assert "polite" in listing and "3 / 100" in listing
    dashboard = client.get(reverse("monitoring:dashboard", args=[project.slug])).content.decode()
    assert 'id="online-score-table"' in dashboard and "polite.judge" in dashboard


def test_a_refused_rule_shows_why_and_keeps_the_form(project, released, simulated_endpoint, sim_server, client_for,
                                                     editor):  # fmt: skip
    judge = simulated_endpoint("Judge", "openai/echo")
    client = client_for(editor)
    url = reverse("monitoring:online_create", args=[project.slug])
    response = client.post(url, _form(released, judge, daily_max_evaluations=""))
    assert response.status_code == 400 and "Set a daily budget" in response.content.decode()
    response = client.post(url, _form(released, judge, evaluators="[{"))
    assert response.status_code == 400 and "Not JSON" in response.content.decode()
    assert not OnlineEvalRule.objects.exists()


def test_an_editor_edits_pauses_and_deletes_a_rule(project, released, simulated_endpoint, sim_server, client_for,
                                                   editor):  # fmt: skip
    judge = simulated_endpoint("Judge", "openai/echo")
    client = client_for(editor)
    client.post(reverse("monitoring:online_create", args=[project.slug]), _form(released, judge))
    rule = OnlineEvalRule.objects.get(name="polite")
    edit = reverse("monitoring:online_edit", args=[project.slug, rule.pk])
    response = client.post(edit, _form(released, judge, sample_rate="0.25", name="renamed"))
    rule.refresh_from_db()
    assert response.status_code == 302 and rule.sample_rate == 0.25 and rule.name == "polite"
    client.post(reverse("monitoring:online_pause", args=[project.slug, rule.pk]))
    rule.refresh_from_db()
    assert not rule.active
    _traffic(project, 10)
    assert not OnlineEvaluation.objects.exists()  # a paused rule samples nothing
    client.post(reverse("monitoring:online_resume", args=[project.slug, rule.pk]))
    rule.refresh_from_db()
    assert rule.active
    actions = set(AuditEvent.objects.filter(object_id=str(rule.pk)).values_list("action", flat=True))
    assert {"online_rule.created", "online_rule.updated", "online_rule.paused", "online_rule.resumed"} <= actions
    client.post(reverse("monitoring:online_delete", args=[project.slug, rule.pk]))
    assert not OnlineEvalRule.objects.exists()


def test_a_viewer_reads_rules_but_cannot_change_them(project, released, simulated_endpoint, sim_server, client_for,
                                                     member):  # fmt: skip
    judge = simulated_endpoint("Judge", "openai/echo")
    specs = json.loads(_form(released, judge)["evaluators"])
    rule = online.rule_create(project=project, actor="test", name="polite", prompt=released, sample_rate=0.5,
                              daily_max_evaluations=10, evaluators=specs)  # fmt: skip
    client = client_for(member("viewer"))
    page = client.get(reverse("monitoring:online_detail", args=[project.slug, rule.pk]))
    assert page.status_code == 200 and 'id="online-edit"' not in page.content.decode()
    assert client.post(reverse("monitoring:online_pause", args=[project.slug, rule.pk])).status_code == 403
    created = client.post(reverse("monitoring:online_create", args=[project.slug]), _form(released, judge))
    assert created.status_code == 403
    rule.refresh_from_db()
    assert rule.active
