import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.reviews import services
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import approved, label_version_id
from apps.webhooks import services as webhooks
from apps.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from apps.webhooks.tests.factories import WebhookFactory


class Receiver:
    """A local HTTP server that records what it receives; `fail_first` answers 500 that many times first."""

    def __init__(self, fail_first: int = 0):
        self.requests: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"boom" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/studio"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _verify(secret: str, request: dict) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"]["X-Studio-Signature"])


@pytest.mark.worker
def test_a_real_worker_delivers_signed_events_of_a_release(start_worker, receiver, prompt, policy, cast, project):
    start_worker(env_overrides={"WEBHOOK_ALLOW_PRIVATE": "true"})
    server = receiver()
    hook = webhooks.webhook_create(
        project=project,
        url=server.url,
        events=["review.requested", "review.approved", "label.released"],
        actor=cast.admin,
    )
    review = approved(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    services.review_release(review=review, actor=cast.author, expected_current_version_id=label_version_id(prompt))

    assert server.wait_for(3), f"received {len(server.requests)} of 3"
    events = sorted(json.loads(r["body"])["event"] for r in server.requests)
    assert events == ["label.released", "review.approved", "review.requested"]
    for request in server.requests:
        assert _verify(hook.secret, request), "the signature must match the body and the webhook's secret"
        assert request["headers"]["X-Studio-Delivery"] == json.loads(request["body"])["id"]
    released = next(json.loads(r["body"]) for r in server.requests if b"label.released" in r["body"])
    assert released["data"]["prompt"] == "greet" and released["data"]["version"] == 2
    assert released["data"]["label"] == "production" and released["project"] == "acme"
    assert not _verify("another-secret", server.requests[0])
    assert _wait(lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 3)
    assert set(WebhookDelivery.objects.values_list("attempts", "response_code")) == {(1, 200)}


@pytest.mark.worker
def test_a_failing_receiver_gets_retries_with_backoff_and_the_same_signed_body(
    start_worker, receiver, project, cast, client_for
):
    start_worker(env_overrides={"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_BASE_SECONDS": "0.5"})
    server = receiver(fail_first=2)
    hook = WebhookFactory(project=project, url=server.url)
    webhooks.webhook_ping(webhook=hook, actor=cast.admin)

    assert server.wait_for(3, timeout=45)
    assert len({r["body"] for r in server.requests}) == 1  # every attempt sends the same bytes
    assert all(_verify(hook.secret, r) for r in server.requests)
    assert _wait(lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).exists())
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.response_code, delivery.last_error) == (3, 200, "")
    # The delivery log shows it to the admin.
    page = client_for(cast.admin).get(f"/p/acme/reviews/webhooks/{hook.pk}/").content.decode()
    assert "succeeded" in page and "<td>3</td>" in page and "<td>200</td>" in page


@pytest.mark.django_db
def test_deliveries_stop_after_the_last_attempt(project, settings):
    from apps.webhooks.tasks import deliver_webhook

    settings.WEBHOOK_MAX_ATTEMPTS = 1
    hook = WebhookFactory(project=project, url="http://127.0.0.1:9/nothing-listens-here")
    delivery = webhooks._delivery(hook, "ping", {})
    deliver_webhook.run(delivery.pk)  # runs the task body here: one attempt, connection refused
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "ConnectError" in delivery.last_error
    deliver_webhook.run(delivery.pk)  # run twice: a finished delivery is left alone
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://example.com/x", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("http://user:pw@example.com/", "no user name or password"),
        ("http:///nohost", "needs a host name"),
    ],
)
def test_it_refuses_urls_that_are_not_plain_http(url, problem):
    with pytest.raises(webhooks.WebhookURLRefused, match=problem):
        webhooks.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/",
        "http://[::1]/",
    ],
)
def test_it_refuses_private_addresses_unless_allowed(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookURLRefused, match="private or local address"):
        webhooks.check_url(url)
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.check_url(url) == url


def test_it_accepts_a_public_address(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.check_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"


@pytest.mark.django_db
def test_a_delivery_to_an_address_that_turned_private_is_refused(project, settings):
    from apps.webhooks.tasks import deliver_webhook

    hook = WebhookFactory(project=project, url="http://127.0.0.1:9/x")
    delivery = webhooks._delivery(hook, "ping", {})
    settings.WEBHOOK_ALLOW_PRIVATE = False
    deliver_webhook.run(delivery.pk)
    delivery.refresh_from_db()
    assert "private or local address" in delivery.last_error and delivery.response_code is None
    # The guard will refuse it again: the delivery fails at once instead of retrying for hours.
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1


def test_the_signature_is_hmac_sha256_of_the_body():
    body = b'{"event":"ping"}'
    assert webhooks.sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


@pytest.mark.django_db
def test_only_admins_manage_webhooks_and_the_secret_is_shown_once(client_for, cast, project):
    data = {"url": "https://hooks.example.com/studio", "events": ["label.released"]}
    assert client_for(cast.reviewer).post("/p/acme/reviews/webhooks/", data).status_code == 403
    assert client_for(cast.reviewer).get("/p/acme/reviews/webhooks/").status_code == 403
    client = client_for(cast.admin)
    response = client.post("/p/acme/reviews/webhooks/", data)
    hook = Webhook.objects.get()
    assert response.status_code == 200 and hook.secret in response.content.decode()
    assert hook.secret not in client.get("/p/acme/reviews/webhooks/").content.decode()
    assert hook.secret not in client.get(f"/p/acme/reviews/webhooks/{hook.pk}/").content.decode()


@pytest.mark.django_db
def test_a_bad_webhook_url_is_refused_and_the_form_kept(client_for, cast):
    data = {"url": "gopher://example.com", "description": "keep me", "events": ["label.released"]}
    response = client_for(cast.admin).post("/p/acme/reviews/webhooks/", data)
    assert response.status_code == 400
    assert "must start with http:// or https://" in response.content.decode() and "keep me" in response.content.decode()
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_only_subscribed_events_are_recorded_and_a_refused_move_records_none(prompt, policy, cast, project):
    from apps.prompts import services as prompt_services

    released_only = WebhookFactory(project=project, events=["label.released"])
    everything = WebhookFactory(project=project, events=["version.saved", "label.rolled_back", "review.requested"])
    services.review_request_create(version=version(prompt, 2), label_name="production", actor=cast.author)
    assert not released_only.deliveries.exists()
    assert list(everything.deliveries.values_list("event", flat=True)) == ["review.requested"]
    with pytest.raises(prompt_services.LabelMoveRefused):
        prompt_services.label_move(prompt=prompt, label_name="production", version=version(prompt, 3), actor=cast.admin)
    assert everything.deliveries.count() == 1
    from apps.prompts.tests.factories import make_version

    make_version(prompt, "v4 {{ name }}", actor=cast.author, samples={"name": "x"})
    assert everything.deliveries.filter(event="version.saved").count() == 1


@pytest.mark.django_db
def test_another_projects_webhook_is_a_404(client_for, project):
    from apps.accounts.tests.factories import MembershipFactory, ProjectFactory

    hook = WebhookFactory(project=project)
    stranger = MembershipFactory(project=ProjectFactory(slug="other"), role="admin").user
    assert client_for(stranger).get(f"/p/other/reviews/webhooks/{hook.pk}/").status_code == 404
    assert client_for(stranger).post(f"/p/other/reviews/webhooks/{hook.pk}/delete/").status_code == 404


@pytest.mark.django_db
def test_the_delivery_log_refreshes_as_a_fragment(client_for, cast, project):
    hook = WebhookFactory(project=project)
    webhooks._delivery(hook, "ping", {})
    response = client_for(cast.admin).get(f"/p/acme/reviews/webhooks/{hook.pk}/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="deliveries"') and "<code>ping</code>" in page and "<nav" not in page
