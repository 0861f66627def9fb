"""API keys: encrypted at rest, rotatable, and never in a response body, a log line or a rendered page."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.playground import services as playground_services
from apps.playground.models import PlaygroundRun
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers import crypto, gateway, services
from apps.providers.models import EndpointCheck, ModelEndpoint

KEY = "sk-live-SECRET-4f9a8b7c6d5e4f3a2b1c-WXYZ"


@pytest.fixture
def admin(member):
    return member("admin", "ada")


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("LiteLLM", "LiteLLM Router", "openai", "httpx", "httpcore", "apps", "django", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_it_stores_only_ciphertext_and_the_last_four(project, admin):
    endpoint = services.endpoint_create(
        project=project, actor=admin, name="OpenAI", model="openai/gpt-4o-mini", api_key=KEY
    )
    row = ModelEndpoint.objects.values().get(pk=endpoint.pk)
    assert KEY not in str(row)
    assert row["api_key_last4"] == "WXYZ"
    assert crypto.decrypt(row["api_key_encrypted"]) == KEY
    assert endpoint.masked_key == "••••WXYZ"
    event = AuditEvent.objects.get(action="endpoint.created")
    assert KEY not in str(event.after) and event.after["api_key"] == "••••WXYZ"


def test_it_decrypts_after_a_rotation_and_rotates_the_stored_keys(project, admin, settings):
    endpoint = services.endpoint_create(project=project, actor=admin, name="A", model="openai/x", api_key=KEY)
    settings.FIELD_ENCRYPTION_KEYS = ["a brand new secret of forty characters...."]
    # The old token is still readable (the SECRET_KEY-derived key decrypts) ...
    assert crypto.decrypt(ModelEndpoint.objects.get(pk=endpoint.pk).api_key_encrypted) == KEY
    assert services.endpoint_keys_rotate() == (1, [])
    # ... and after the rotation the new key alone reads it.
    settings.SECRET_KEY = "a different django secret key, long enough to be accepted"
    assert crypto.decrypt(ModelEndpoint.objects.get(pk=endpoint.pk).api_key_encrypted) == KEY


def test_it_says_plainly_when_a_key_can_no_longer_be_decrypted(project, admin, settings):
    endpoint = services.endpoint_create(project=project, actor=admin, name="A", model="openai/x", api_key=KEY)
    settings.SECRET_KEY = "someone rotated the secret key without keeping the old one"
    with pytest.raises(gateway.GatewayError) as error:
        gateway.chat(ModelEndpoint.objects.get(pk=endpoint.pk), [{"role": "user", "content": "hi"}])
    assert error.value.kind == "auth" and "cannot be decrypted" in error.value.message


def test_it_never_shows_or_logs_the_key(project, admin, client_for, sim_server, all_logs):
    sim_server.configure(api_key=KEY)
    client = client_for(admin)
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}", samples={"name": "Ada"})

    response = client.post(
        reverse("providers:endpoint_create", args=[project.slug]),
        {"name": "Sim", "kind": "simulated", "mode": "chat", "model": "openai/echo", "api_base": sim_server.url,
         "api_key": KEY, "timeout_seconds": 5, "max_retries": 0, "max_concurrency": 2, "is_active": "on"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    endpoint = ModelEndpoint.objects.get(name="Sim")
    bodies = [response.content.decode()]

    def test_connection() -> str:
        """Press Test connection, let the check run as the interactive worker would, and read its answer."""
        pressed = client.post(
            reverse("providers:endpoint_test", args=[project.slug, endpoint.pk]), HTTP_HX_REQUEST="true"
        )
        bodies.append(pressed.content.decode())
        check = EndpointCheck.objects.filter(endpoint=endpoint).first()
        services.endpoint_check_execute(check_id=check.pk)
        url = reverse("providers:endpoints", args=[project.slug]) + f"?check={check.pk}"
        return client.get(url, HTTP_HX_REQUEST="true").content.decode()

    test = test_connection()
    assert "Connected" in test
    bodies.append(test)

    # A failed call (the server now wants another key) and its error message.
    sim_server.configure(api_key="sk-another-key-entirely-000")
    failed = test_connection()
    assert "refused the API key" in failed
    bodies.append(failed)
    sim_server.configure(api_key=KEY)

    client.post(
        reverse("playground:playground", args=[project.slug]),
        {"prompt": "greet", "version": "1", "intent": "run", "template": "Hello {{ name }}", "var-name": "Ada",
         "endpoints": [endpoint.pk]},
    )  # fmt: skip
    run = PlaygroundRun.objects.get()
    result = playground_services.playground_result_execute(result_id=run.results.get().pk)
    assert result.output == "Hello Ada"

    for url in (
        reverse("providers:endpoints", args=[project.slug]),
        reverse("providers:endpoint_edit", args=[project.slug, endpoint.pk]),
        reverse("playground:playground", args=[project.slug]) + "?prompt=greet",
        reverse("playground:run", args=[project.slug, run.pk]),
        reverse("audit:list", args=[project.slug]),
        reverse("admin:providers_modelendpoint_change", args=[endpoint.pk]),
    ):
        if "admin" in url:
            admin.is_staff = admin.is_superuser = True
            admin.save()
        page = client.get(url)
        assert page.status_code == 200, url
        bodies.append(page.content.decode())

    stored = ModelEndpoint.objects.get(pk=endpoint.pk).api_key_encrypted
    for body in bodies:
        assert KEY not in body
        assert stored not in body
    assert "••••WXYZ" in bodies[-5]  # the edit page shows only the last four
    assert KEY not in all_logs.text
    assert any("model call" in line for line in all_logs.messages)


def test_it_redacts_a_key_that_anything_tries_to_log(project, admin, sim_server, caplog):
    endpoint = services.endpoint_create(
        project=project, actor=admin, name="Sim", model="openai/echo", api_base=sim_server.url, api_key=KEY
    )
    gateway.chat(endpoint, [{"role": "user", "content": "hi"}])
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("sending with key %s", KEY)
    assert KEY not in caplog.text and "[redacted]" in caplog.text


def test_it_keeps_the_key_when_the_form_leaves_it_empty_and_removes_it_on_request(project, admin, client_for):
    endpoint = services.endpoint_create(project=project, actor=admin, name="A", model="openai/x", api_key=KEY)
    client = client_for(admin)
    form = {"name": "A", "kind": "remote", "mode": "chat", "model": "openai/y", "timeout_seconds": 30,
            "max_retries": 1, "max_concurrency": 1, "api_key": ""}  # fmt: skip
    edit = reverse("providers:endpoint_edit", args=[project.slug, endpoint.pk])
    client.post(edit, form)
    endpoint.refresh_from_db()
    assert (endpoint.model, crypto.decrypt(endpoint.api_key_encrypted)) == ("openai/y", KEY)

    client.post(edit, {**form, "clear_api_key": "on"})
    endpoint.refresh_from_db()
    assert endpoint.api_key_encrypted == "" and endpoint.masked_key == ""
    event = AuditEvent.objects.filter(action="endpoint.updated").first()
    assert "removed" in event.after["api_key"]


def test_it_refuses_a_key_pasted_into_a_prompt_and_sends_nothing(project, editor, client_for, simulated_endpoint):
    endpoint = simulated_endpoint(api_key=KEY)
    response = client_for(editor).post(
        reverse("playground:playground", args=[project.slug]),
        {"intent": "run", "kind": "text", "template": f"Use the key {KEY} please", "endpoints": [endpoint.pk]},
    )
    assert response.status_code == 400
    assert "contains the API key of the endpoint" in response.content.decode()
    assert KEY not in response.content.decode().replace(f"Use the key {KEY}", "")  # only in the user's own textarea
    assert not PlaygroundRun.objects.exists()


def test_it_refuses_a_prompt_holding_something_shaped_like_a_provider_key(
    project, editor, client_for, simulated_endpoint
):
    endpoint = simulated_endpoint()
    response = client_for(editor).post(
        reverse("playground:playground", args=[project.slug]),
        {"intent": "run", "kind": "text", "template": "key: sk-proj-abcdefghijklmnopqrstuvwxyz012345",
         "endpoints": [endpoint.pk]},
    )  # fmt: skip
    assert response.status_code == 400
    assert "looks like a provider API key" in response.content.decode()
    assert not PlaygroundRun.objects.exists()
