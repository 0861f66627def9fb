"""Seed the demo project (idempotent). Only on the embedded default: the demo app is installed only with DEBUG on."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from apps.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Create the demo project with every app's demo data (idempotent; DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo only runs with DEBUG on: a production studio never has the demo login.")
        # The seed's review emails would flood the console of `make run`; keep them in memory.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
            created = seed_demo()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo project created."))
        else:
            self.stdout.write("Demo project already present; nothing changed.")
        self.stdout.write(f"Log in as {settings.DEMO_USERNAME} / {settings.DEMO_PASSWORD} (admin)")
        self.stdout.write(f"       or reviewer / {settings.DEMO_PASSWORD} (reviewer)")
        self.stdout.write(
            f"       or rater1, rater2, rater3 / {settings.DEMO_PASSWORD} (editors who rated the A/B test)"
        )
