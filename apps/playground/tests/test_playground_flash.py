"""The playground's chat messages are no flash messages: the page shows the prompt's messages in the form
and Django's real messages (for example after deleting an endpoint) at the top, each once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers.models import EndpointKind
from apps.providers.services import endpoint_create

pytestmark = pytest.mark.django_db


def test_a_chat_prompt_in_the_playground_shows_no_alerts_and_keeps_real_messages(project, member, client_for):
    prompt = PromptFactory(project=project, name="chatty")
    make_version(prompt, kind="chat", messages=[{"role": "system", "content": "Be brief about {{ topic }}."}],
                 samples={"topic": "tea"})  # fmt: skip
    client = client_for(member("admin", "ada"))
    url = reverse("playground:playground", args=[project.slug]) + "?prompt=chatty"
    endpoint = endpoint_create(
        project=project, actor="test", name="spare", kind=EndpointKind.REMOTE, model="openai/x",
        api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip
    # Deleting the endpoint leaves a real flash message for the next page shown: the playground.
    deleted = client.post(reverse("providers:endpoint_delete", args=[project.slug, endpoint.pk]))
    assert deleted.status_code == 302
    html = client.get(url).content.decode()
    alerts = html[html.index('id="messages"') : html.index("</div>", html.index('id="messages"')) + 6]
    assert "Be brief about" not in alerts and "alert-system" not in alerts
    assert "Endpoint spare deleted." in alerts
    assert "Be brief about {{ topic }}." in html  # the message is in the form's textarea
