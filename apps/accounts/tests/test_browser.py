"""Members and keys in a real browser: removing a member revokes their keys, shown on the keys page."""

import pytest

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_removing_a_member_shows_their_revoked_keys_on_the_keys_page(page, login_page, member, project):
    admin, leaver = member("admin", "boss"), member("editor", "leaver")
    api_key_create(project=project, name="leaver's laptop", scope="write", actor=leaver)

    login_page(admin)
    page.goto("/p/acme/members/")
    assert "revokes the API keys they created" in page.locator("#removal-revokes-keys").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="leaver").get_by_role("button", name="Remove").click()
    page.get_by_text("leaver removed from the project; the 1 API key(s) they created here were revoked").wait_for()

    page.goto("/p/acme/api-keys/")
    row = page.locator("tr", has_text="leaver's laptop")
    assert "revoked" in row.inner_text() and "leaver was removed from the project" in row.inner_text()
    assert row.get_by_role("button", name="Revoke").count() == 0
    assert not ApiKey.objects.get().is_active


def test_a_paused_sign_in_says_so_in_the_browser(page, member, settings):
    user = member("editor", "erin")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "wrong")
        page.click("button[type=submit]")
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    message = page.locator("#locked-out").inner_text()
    assert "Too many failed sign-ins for this account or from this address" in message
    assert "paused for 15 minutes" in message
    page.goto("/p/acme/prompts/")
    assert "/login/" in page.url
