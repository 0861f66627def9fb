from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import ApiKey, ApiKeyScope
from apps.accounts.services import AccountError, api_key_create, api_key_revoke
from apps.accounts.tests.factories import ProjectFactory
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_it_stores_only_a_prefix_and_a_hash(project, member):
    admin = member("admin")
    api_key, raw = api_key_create(project=project, name="checkout", scope="write", actor=admin)
    assert raw.startswith("ps_") and len(raw) > 40
    stored = ApiKey.objects.get()
    assert stored.prefix == raw[:11]
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str([getattr(stored, f.attname) for f in ApiKey._meta.fields])
    assert stored.audit_repr == f"api key {raw[:11]}… (checkout)"
    assert stored.audit_user == admin
    event = AuditEvent.objects.get(action="api_key.created")
    assert (event.actor, event.after["scope"], event.after["prefix"]) == (admin, "write", raw[:11])
    assert raw not in str(event.after)


def test_it_audits_a_revocation_and_refuses_a_second_one(project, member):
    admin = member("admin")
    api_key, _ = api_key_create(project=project, name="old", scope="read", actor=admin)
    api_key_revoke(api_key=api_key, actor=admin)
    assert ApiKey.objects.get().revoked_at is not None
    assert AuditEvent.objects.get(action="api_key.revoked").actor == admin
    with pytest.raises(AccountError, match="already revoked"):
        api_key_revoke(api_key=api_key, actor=admin)


@pytest.mark.parametrize(("name", "scope", "message"), [(" ", "read", "name"), ("x", "admin", "Unknown scope")])
def test_it_refuses_a_key_without_name_or_with_an_unknown_scope(project, name, scope, message):
    with pytest.raises(AccountError, match=message):
        api_key_create(project=project, name=name, scope=scope, actor="test")
    assert not ApiKey.objects.exists()


def test_it_shows_a_new_key_once_then_only_its_prefix(client_for, project, member):
    client = client_for(member("admin"))
    response = client.post("/p/acme/api-keys/", {"name": "checkout", "scope": "read"})
    assert response.status_code == 200
    raw = response.context["new_key"]["raw"]
    assert raw in response.content.decode()
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    listing = client.get("/p/acme/api-keys/").content.decode()
    assert raw not in listing
    assert raw[:11] in listing
    assert "never" in listing


def test_it_revokes_a_key_from_the_list(client_for, project, member):
    client = client_for(member("admin"))
    api_key, _ = api_key_create(project=project, name="old", scope="read", actor="test")
    response = client.post(f"/p/acme/api-keys/{api_key.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get().revoked_at is not None


def test_it_lets_only_admins_manage_keys(client_for, project, member):
    api_key, _ = api_key_create(project=project, name="old", scope="read", actor="test")
    editor = client_for(member("editor"))
    assert editor.get("/p/acme/api-keys/").status_code == 403
    assert editor.post("/p/acme/api-keys/", {"name": "x", "scope": "write"}).status_code == 403
    assert editor.post(f"/p/acme/api-keys/{api_key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_it_hides_other_projects_keys(client_for, project, member):
    other_key, _ = api_key_create(project=ProjectFactory(slug="other"), name="theirs", scope="read", actor="test")
    client = client_for(member("admin"))
    assert client.get("/p/other/api-keys/").status_code == 404
    assert client.post(f"/p/acme/api-keys/{other_key.pk}/revoke/").status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_it_names_a_missing_key_name_in_the_form(client_for, project, member):
    response = client_for(member("admin")).post("/p/acme/api-keys/", {"name": "", "scope": "read"})
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_command_prints_the_key_as_its_last_line(project):
    out = io.StringIO()
    call_command("create_api_key", "--project", "acme", "--scope", "write", "--name", "ci", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    stored = ApiKey.objects.get()
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert (stored.scope, stored.name) == (ApiKeyScope.WRITE, "ci")
    assert AuditEvent.objects.get(action="api_key.created").actor_repr == "manage.py create_api_key"
    with pytest.raises(CommandError, match="No project"):
        call_command("create_api_key", "--project", "nope", "--name", "ci", stdout=io.StringIO())


@pytest.mark.browser
def test_it_creates_a_key_and_fetches_a_prompt_with_it(login_page, live_server, project, member):
    """The newcomer's path: create a key in the UI, copy it, fetch a released prompt with it."""
    import json
    import time
    import urllib.error
    import urllib.request

    from apps.prompts import services
    from apps.prompts.tests.factories import PromptFactory, make_version

    prompt = PromptFactory(project=project, name="greet")
    services.label_move(prompt=prompt, label_name="production", version=make_version(prompt), actor="test")
    page = login_page(member("admin", "ada"))
    page.goto("/p/acme/prompts/")
    if page.locator(".navbar-toggler").is_visible():  # below 1400 px the navbar folds behind its button
        page.locator(".navbar-toggler").click()
    page.click(".navbar >> text=API keys")
    page.fill("#id_name", "my-app")
    page.select_option("#id_scope", "read")
    page.click("button:has-text('Create key')")
    raw = page.inner_text("#new-key-value").strip()
    assert raw.startswith("ps_")
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/prompts/greet", headers={"Authorization": f"Bearer {raw}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["version"] == 1
    page.goto("/p/acme/api-keys/")
    assert raw not in page.content()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#api-keys button:has-text('Revoke')")
    page.wait_for_selector("text=revoked")
    deadline = time.monotonic() + 1.0  # the API's process cache sees the revocation within a second
    while True:
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
            break
        assert time.monotonic() < deadline, "the revoked key still worked after a second"
        time.sleep(0.05)
