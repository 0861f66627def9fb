"""A Content-Security-Policy on every page, no inline script anywhere, a label on every form control."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.core.tests.pages import facts, walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_client(client, settings):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=settings.DEMO_USERNAME))
    return client


def _policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_page_has_the_policy_and_no_inline_script(demo_client):
    pages = walk(demo_client, "/p/demo/prompts/", prefix="/p/demo/")
    pages.update(walk(demo_client, "/api/v1/docs", prefix="/nothing/"))
    html_pages = {url: (r, page) for url, (r, page) in pages.items() if page is not None}
    assert len(html_pages) >= 30, sorted(pages)  # the walk reached the studio's main pages
    problems = []
    for url, (response, page) in html_pages.items():
        policy = _policy(response)
        if policy.get("script-src") != ["'self'"] or policy.get("default-src") != ["'self'"]:
            problems.append(f"{url}: Content-Security-Policy {response.get('Content-Security-Policy')!r}")
        if page.inline_scripts:
            problems.append(f"{url}: inline <script> {page.inline_scripts}")
        if page.handlers:
            problems.append(f"{url}: inline handlers {page.handlers}")
    assert not problems, "\n".join(problems)
    broken = {url: r.status_code for url, (r, page) in pages.items() if r.status_code >= 500}
    assert not broken


def test_the_login_page_and_errors_carry_the_policy_too(client):
    for url, status in (("/login/", 200), ("/p/nope/prompts/", 302), ("/api/v1/nope", 404)):
        response = client.get(url)
        assert response.status_code == status
        assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not facts(client.get("/login/").content.decode()).inline_scripts


def test_every_form_control_has_a_label(demo_client):
    pages = walk(demo_client, "/p/demo/prompts/", prefix="/p/demo/")
    missing = {url: page.unlabelled() for url, (_, page) in pages.items() if page is not None and page.unlabelled()}
    assert not missing, "\n".join(f"{url}: {controls}" for url, controls in missing.items())


def test_favicon_ico_answers_with_the_vendored_icon(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200 and response.redirect_chain[0][1] == 301
    assert b"<svg" in b"".join(response.streaming_content if response.streaming else [response.content])


def test_chart_pages_load_the_small_vendored_plotly_bundle():
    from pathlib import Path

    from django.conf import settings

    vendor = Path(settings.BASE_DIR) / "static" / "vendor" / "plotly"
    assert (vendor / "plotly-cartesian.min.js").stat().st_size < 2_000_000  # the full bundle was 4.5 MB
    assert not (vendor / "plotly.min.js").exists()
    templates = Path(settings.BASE_DIR) / "templates"
    charted = [p for p in templates.rglob("*.html") if "data-figure" in p.read_text() or "_chart" in p.read_text()]
    assert charted
    for page in templates.rglob("*.html"):
        text = page.read_text()
        assert 'id="exports"' not in text, page  # an element id becomes a window global that UMD bundles read
        assert "plotly.min.js" not in text, page
