"""Test connection: a one-token call on the interactive queue, its answer shown live next to the endpoint."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.tests.factories import ProjectFactory
from apps.providers import services
from apps.providers.models import EndpointCheck, ResultStatus


@pytest.fixture
def admin(member):
    return member("admin", "ada")


def press(client, project, endpoint, **headers):
    return client.post(reverse("providers:endpoint_test", args=[project.slug, endpoint.pk]), **headers)


def fragment(client, project, check) -> str:
    url = reverse("providers:endpoints", args=[project.slug]) + f"?check={check.pk}"
    return client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_it_queues_the_check_after_commit_and_answers_at_once(
    project, admin, client_for, simulated_endpoint, sim_server, django_capture_on_commit_callbacks
):
    endpoint = simulated_endpoint()
    client = client_for(admin)
    with django_capture_on_commit_callbacks() as callbacks:
        response = press(client, project, endpoint, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    check = EndpointCheck.objects.get()
    assert response.status_code == 200 and len(callbacks) == 1
    assert (check.status, check.endpoint, check.requested_by) == (ResultStatus.QUEUED, endpoint, admin)
    assert "Testing (waiting for a worker)…" in html
    assert f'hx-get="/p/acme/models/?check={check.pk}"' in html
    assert sim_server.requests() == []  # nothing was called inside the web request


def test_it_shows_the_answer_time_once_the_worker_ran_it(project, admin, client_for, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint()
    client = client_for(admin)
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    check = services.endpoint_check_execute(check_id=EndpointCheck.objects.get().pk)

    assert check.status == ResultStatus.DONE and check.latency_ms is not None
    html = fragment(client, project, check)
    assert f"Connected: answered in {check.latency_ms} ms" in html and "hx-get" not in html
    assert sim_server.requests()[-1].body["max_tokens"] == 1


def test_it_shows_the_providers_error_in_plain_words(project, admin, client_for, simulated_endpoint, sim_server):
    sim_server.configure(api_key="sk-the-right-key-for-this-one-00")
    endpoint = simulated_endpoint(api_key="sk-a-wrong-key-for-this-server-1")
    client = client_for(admin)
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    check = services.endpoint_check_execute(check_id=EndpointCheck.objects.get().pk)

    assert check.status == ResultStatus.FAILED and check.error_kind == "auth"
    html = fragment(client, project, check)
    assert "Authentication:" in html and "refused the API key" in html
    assert "sk-a-wrong-key-for-this-server-1" not in html


def test_it_calls_once_when_the_task_is_delivered_twice(project, admin, simulated_endpoint, sim_server):
    check = services.endpoint_check_start(endpoint=simulated_endpoint(), actor=admin)
    assert services.endpoint_check_execute(check_id=check.pk).status == ResultStatus.DONE
    assert services.endpoint_check_execute(check_id=check.pk) is None
    assert len(sim_server.requests()) == 1


def test_it_reuses_a_check_that_is_still_waiting(project, admin, client_for, simulated_endpoint):
    endpoint = simulated_endpoint()
    client = client_for(admin)
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    assert EndpointCheck.objects.count() == 1


def test_it_says_so_when_no_worker_picks_the_check_up(project, admin, client_for, simulated_endpoint):
    endpoint = simulated_endpoint()
    check = services.endpoint_check_start(endpoint=endpoint, actor=admin)
    EndpointCheck.objects.filter(pk=check.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    client = client_for(admin)

    html = fragment(client, project, check)
    assert "No answer from a worker after 1" in html and "<code>interactive</code> queue" in html
    assert "hx-get" not in html  # it stops polling
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    assert EndpointCheck.objects.count() == 2  # pressing again queues a fresh one


def test_it_works_without_javascript(project, admin, client_for, simulated_endpoint):
    endpoint = simulated_endpoint("Sim")
    client = client_for(admin)
    response = press(client, project, endpoint)
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "Testing Sim: the answer appears next to it." in page
    assert "Testing (waiting for a worker)…" in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page

    services.endpoint_check_execute(check_id=EndpointCheck.objects.get().pk)
    page = client.get(response.url).content.decode()
    assert "Connected: answered in" in page and "noscript" not in page


def test_it_answers_404_for_a_check_of_another_project(project, admin, client_for, simulated_endpoint):
    foreign = simulated_endpoint("Foreign", for_project=ProjectFactory(slug="other"))
    check = services.endpoint_check_start(endpoint=foreign, actor="test")
    client = client_for(admin)
    url = reverse("providers:endpoints", args=[project.slug])
    assert client.get(f"{url}?check={check.pk}", HTTP_HX_REQUEST="true").status_code == 404
    assert client.get(f"{url}?check=nope", HTTP_HX_REQUEST="true").status_code == 404


@pytest.mark.worker
def test_a_real_worker_answers_the_check_on_the_interactive_queue(
    project, admin, client_for, simulated_endpoint, sim_server, celery_worker
):
    endpoint = simulated_endpoint()
    client = client_for(admin)
    press(client, project, endpoint, HTTP_HX_REQUEST="true")
    check = EndpointCheck.objects.get()
    deadline = time.monotonic() + 30
    html = fragment(client, project, check)
    while "Connected" not in html and time.monotonic() < deadline:
        time.sleep(0.2)
        html = fragment(client, project, check)
    assert "Connected: answered in" in html
    assert len(sim_server.requests()) == 1
