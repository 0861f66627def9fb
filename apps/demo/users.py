"""The demo's users: each made once with the documented demo password."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model


def demo_user(username: str):
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    if created:
        user.set_password(settings.DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user
