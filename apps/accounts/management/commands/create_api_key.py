"""Create an API key from the shell; the key is the last line of the output, so scripts can `tail -n1`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import ApiKeyScope, Project
from apps.accounts.services import AccountError, api_key_create


class Command(BaseCommand):
    help = "Create an API key for a project and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--scope", choices=ApiKeyScope.values, default=ApiKeyScope.READ)
        parser.add_argument("--name", required=True, help="Where the key is used, e.g. 'checkout-service'.")

    def handle(self, *args, project: str, scope: str, name: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project has the slug '{project}'.")
        try:
            api_key, raw_key = api_key_create(project=target, name=name, scope=scope, actor="manage.py create_api_key")
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created {api_key.get_scope_display().lower()} key '{api_key.name}' for {target.name}.")
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(raw_key)
