"""The monitoring pages in a real browser on the seeded demo: the dashboard, its range, a drift finding, an alert."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_range_drift_finding_and_alert(page, login_page, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from django.contrib.auth import get_user_model

    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    login_page(get_user_model().objects.get(username=settings.DEMO_USERNAME), password=settings.DEMO_PASSWORD)
    page.goto("/")
    page.wait_for_url("**/p/demo/monitoring/")
    page.locator("#chart-volume .main-svg").first.wait_for()  # plotly drew it (no inline script under the CSP)
    assert int(page.locator("#health-volume").inner_text()) > 0
    before = page.locator("#range-shown").inner_text()
    page.select_option("#range", "24h")
    page.wait_for_url("**range=24h**")
    page.locator("#range-shown", has_text="per hour").wait_for()  # not wait_for_function: the CSP forbids eval
    after = page.locator("#range-shown").inner_text()
    assert after != before and "per hour" in after
    page.locator("#chart-latency .main-svg").first.wait_for()
    page.locator("a.drift-finding").first.click()
    page.locator(".finding", has_text="`product` shifted").wait_for()
    page.locator("[id^=drift-chart-] .main-svg").first.wait_for()
    page.goto("/p/demo/monitoring/")
    page.locator("a.open-alert").first.click()
    page.locator("#alert-status", has_text="open").wait_for()
    page.click("#acknowledge")
    page.locator("#alert-status", has_text="acknowledged").wait_for()
    assert not problems, problems


def test_online_evaluation_rule_page_and_pause_at_800px(page, login_page, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from django.contrib.auth import get_user_model

    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_viewport_size({"width": 800, "height": 900})
    login_page(get_user_model().objects.get(username=settings.DEMO_USERNAME), password=settings.DEMO_PASSWORD)
    page.goto("/p/demo/monitoring/")
    assert page.locator("#online-score-table", has_text="support-checks.short").count() == 1
    page.goto("/p/demo/monitoring/online/")
    page.locator("a.online-rule-link", has_text="support-checks").click()
    page.locator("#calibration-table", has_text="opens-politely").wait_for()
    assert page.locator("#online-evaluators", has_text="pass rate").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # nothing scrolls sideways
    page.click("#pause")
    page.locator("#rule-state", has_text="paused").wait_for()
    assert not problems, problems
