"""The studio's pages in a real browser: charts drawn under the Content-Security-Policy with no violation,
the navbar collapsed and nothing scrolling sideways at 800 px, the audit table inside 1280 px."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH_CSP = """
window.__csp = [];
document.addEventListener(
  "securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`)
);
"""


@pytest.fixture
def demo_page(page, login_page, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from django.contrib.auth import get_user_model

    page.add_init_script(WATCH_CSP)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    login_page(get_user_model().objects.get(username=settings.DEMO_USERNAME), password=settings.DEMO_PASSWORD)
    page.problems = problems
    return page


def _chart_pages():
    from apps.datasets.models import Dataset
    from apps.demo.ratings import EXPERIMENT_NAME
    from apps.experiments.models import Experiment
    from apps.reviews.models import ReviewRequest

    experiment = Experiment.objects.get(name=EXPERIMENT_NAME)
    review = ReviewRequest.objects.get(status="open", version__prompt__name="support-reply")  # the A/B test's
    dataset = Dataset.objects.filter(project__slug="demo").order_by("pk").first()
    return [
        (f"/p/demo/ratings/experiments/{experiment.pk}/stats/", "#chart-win_matrix"),
        (f"/p/demo/experiments/{experiment.pk}/", "#chart-latency"),
        (f"/p/demo/reviews/{review.pk}/", "#evidence [data-figure]"),
        (f"/p/demo/datasets/{dataset.pk}/v/1/quality/", "#length-chart"),
    ]


def test_charts_draw_for_an_admin_with_no_csp_violation(demo_page):
    page = demo_page
    for url, selector in _chart_pages():
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.locator(f"{selector} .main-svg").first.wait_for()  # plotly drew it
        assert page.evaluate("typeof window.Plotly") == "object"
        assert page.evaluate("window.__csp") == [], url
        if "/stats/" in url:
            assert page.locator("#export-links a").count() == 4  # the admin's export links sit beside the charts
    csp = [p for p in page.problems if "Content Security Policy" in p or "Plotly" in p]
    assert not csp, csp


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_at_800_px_the_navbar_collapses_and_no_page_scrolls_sideways(demo_page):
    page = demo_page
    page.set_viewport_size({"width": 800, "height": 900})
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.core.tests.pages import walk

    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    urls = [url for url, (r, facts) in walk(client, "/p/demo/prompts/", prefix="/p/demo/").items() if facts]
    wide = {}
    for url in urls:
        page.goto(url)
        if (extra := _overflow(page)) > 0:
            wide[url] = extra
    assert not wide, wide
    page.goto("/p/demo/prompts/")
    assert page.locator(".navbar-toggler").is_visible()
    assert not page.locator("#nav").is_visible()
    page.locator(".navbar-toggler").click()
    page.get_by_role("link", name="Audit").wait_for()
    page.get_by_role("link", name="Audit").click()
    page.locator("h1", has_text="Audit log").wait_for()


def test_the_audit_table_fits_1280_px_and_reads_as_fields(demo_page):
    page = demo_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/p/demo/audit/")
    assert _overflow(page) <= 0
    table = page.locator(".audit-table")
    assert table.evaluate("t => t.getBoundingClientRect().right") <= 1280
    text = table.inner_text()
    assert "{'" not in text and "content hash:" in text  # a saved version reads "content hash: …", not a dict


@pytest.mark.parametrize("width", [800, 1024, 1280])
def test_the_variable_type_select_shows_its_longest_type(demo_page, width):
    page = demo_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/p/demo/prompts/support-reply/edit/")
    select = page.locator("select[name$='-type']").first
    room, needed = select.evaluate(
        """s => {
            const style = getComputedStyle(s);
            const canvas = document.createElement("canvas").getContext("2d");
            canvas.font = `${style.fontSize} ${style.fontFamily}`;
            const text = Math.max(...Array.from(s.options).map((o) => canvas.measureText(o.text).width));
            return [s.clientWidth, text + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight)];
        }"""
    )
    assert room >= needed, (room, needed)
