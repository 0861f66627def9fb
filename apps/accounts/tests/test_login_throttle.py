"""Sign-in is throttled per account and per address (django-axes), through the real login form."""

import pytest

from apps.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(client, username, password, ip):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_an_account_is_paused_after_five_failures_from_anywhere(client, settings):
    UserFactory(username="alice")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, "alice", "guess", f"10.0.0.{attempt + 1}")
        assert response.status_code == 200 and b"didn't match" in response.content
    assert _login(client, "alice", "guess", "10.0.0.99").status_code == 429  # the fifth failure pauses it

    response = _login(client, "alice", "password", "10.0.1.1")  # the right password, a new address

    assert response.status_code == 429
    assert b"Too many failed sign-ins for this account or from this address" in response.content
    assert b"paused for 15 minutes" in response.content
    assert not _signed_in(client)
    UserFactory(username="bob")
    assert _login(client, "bob", "password", "10.0.1.1").status_code == 302  # others are not affected


def test_an_address_is_paused_after_five_failures_on_any_accounts(client, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"nobody{attempt}", "guess", "192.0.2.7")
    UserFactory(username="carol")

    assert _login(client, "carol", "password", "192.0.2.7").status_code == 429
    assert not _signed_in(client)
    assert _login(client, "carol", "password", "192.0.2.8").status_code == 302


def test_a_successful_sign_in_clears_the_accounts_failures(client, settings):
    UserFactory(username="dana")
    for round_ in range(2):
        for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
            _login(client, "dana", "guess", f"198.51.100.{round_ * 10 + attempt}")
        assert _login(client, "dana", "password", f"198.51.100.{round_ * 10 + 9}").status_code == 302
        client.logout()


def test_the_admin_login_is_throttled_too(client, settings):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "root", "password": "guess"}, REMOTE_ADDR=f"10.9.0.{attempt}")
    response = client.post("/admin/login/", {"username": "root", "password": "password"}, REMOTE_ADDR="10.9.1.1")
    assert response.status_code == 429 and not _signed_in(client)
