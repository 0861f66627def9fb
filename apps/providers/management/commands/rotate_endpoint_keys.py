"""Re-encrypt every stored provider API key with the current first encryption secret (see README: rotation)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.providers.services import endpoint_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every model endpoint's API key with the first of FIELD_ENCRYPTION_KEYS (or SECRET_KEY)."

    def handle(self, *args, **options):
        rotated, unreadable = endpoint_keys_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} API key(s)."))
        if unreadable:
            raise CommandError(
                "These keys cannot be decrypted with the configured secrets; restore the old secret or enter "
                f"the keys again: {', '.join(unreadable)}"
            )
