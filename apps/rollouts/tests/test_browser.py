"""The canary page in a real browser at 800 px: arms, guardrails, the boundary chart drawn under the CSP, act."""

from __future__ import annotations

import pytest

from apps.rollouts import services
from apps.rollouts.tests.test_views import _send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def test_at_800_px_the_canary_page_draws_its_boundary_and_rolls_back(split_prompt, editor, page, login_page,
                                                                      make_key, api):  # fmt: skip
    rollout = services.rollout_start(prompt=split_prompt, label_name="production",
                                     canary_version=split_prompt.versions.get(number=3), actor=editor,
                                     min_volume=10_000, min_minutes=0,
                                     guardrails=[{"metric": "error_rate", "tolerance": 0.0},
                                                 {"metric": "latency_p95", "tolerance": 0.2}])  # fmt: skip
    sender = api(make_key("ingest"))
    for _ in range(3):
        _send(sender, version=2, count=80, errors=2)
        _send(sender, version=3, count=60, errors=1)
        assert services.rollout_evaluate(rollout_id=rollout.pk) == "watching"
    page.add_init_script(WATCH_CSP)
    page.set_viewport_size({"width": 800, "height": 900})
    login_page(editor)
    page.goto(f"/p/{split_prompt.project.slug}/canaries/{rollout.pk}/")
    page.locator("#boundary-error_rate .main-svg").first.wait_for()
    assert page.evaluate("window.__csp") == []
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert page.locator(".guardrail-row").count() == 2
    assert "95%" in page.locator("#arm-stable").inner_text() and "5%" in page.locator("#arm-canary").inner_text()
    page.get_by_role("button", name="Roll back").click()
    page.locator("#canary-status", has_text="Rolled back").wait_for()
    assert page.locator(".canary-event[data-kind='rolled_back']").count() == 1
    page.goto(f"/p/{split_prompt.project.slug}/canaries/")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
