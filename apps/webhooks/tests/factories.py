from __future__ import annotations

import factory

from apps.accounts.tests.factories import ProjectFactory
from apps.webhooks.models import Webhook


class WebhookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Webhook

    project = factory.SubFactory(ProjectFactory)
    url = "http://127.0.0.1:9/hook"
    events = factory.LazyFunction(lambda: ["label.released", "review.requested", "review.approved"])
