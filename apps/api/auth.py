"""`Authorization: Bearer <key>`: one SHA-256 and a dictionary lookup per request once the key is cached."""

from __future__ import annotations

import time

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from apps.accounts import selectors as account_selectors
from apps.accounts import services as account_services
from apps.api import cache
from apps.api.cache import KeyInfo
from apps.api.errors import ApiError

TOUCH_EVERY_SECONDS = 60


class KeyPrincipal:
    """request.user of an API request: the key stands for no person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: KeyInfo):
        self.key = key

    def __str__(self) -> str:
        return f"api key {self.key.prefix}…"


def key_info_for(raw_key: str) -> KeyInfo | None:
    # The accounts app owns how a key is hashed and found; the API only caches what it found.
    key_hash = account_services.api_key_hash(raw_key)
    info = cache.key_get(key_hash)
    if info is not None:
        return info
    epoch = cache.epoch()
    api_key = account_selectors.api_key_get_by_hash(key_hash=key_hash)
    if api_key is None:
        return None
    info = KeyInfo(
        id=api_key.pk,
        project_id=api_key.project_id,
        project_slug=api_key.project.slug,
        scope=api_key.scope,
        prefix=api_key.prefix,
        name=api_key.name,
        revoked=api_key.revoked_at is not None,
    )
    cache.key_put(key_hash, info, read_at_epoch=epoch)
    return info


NOT_AUTHENTICATED = "Send an API key as 'Authorization: Bearer <key>'; project admins create keys under API keys."
AUTH_HEADER = 'Bearer realm="api"'


def authenticate_request(request) -> KeyInfo | None:
    """The key of a request (None without an Authorization header); ApiError 401 for a bad or revoked key."""
    cache.refresh()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, raw_key = header.partition(" ")
    raw_key = raw_key.strip()
    if scheme.lower() != "bearer" or not raw_key:
        raise ApiError(401, "invalid_auth_header", "Send the key as 'Authorization: Bearer <key>'.")
    info = key_info_for(raw_key) if len(raw_key) <= 200 else None
    if info is None:
        raise ApiError(401, "invalid_key", "This API key is not valid.")
    if info.revoked:
        raise ApiError(401, "key_revoked", f"The API key {info.prefix}… was revoked.")
    now = time.monotonic()
    if now - info.touched_at > TOUCH_EVERY_SECONDS:
        info.touched_at = now
        account_services.api_key_touch(api_key_id=info.id, every_seconds=TOUCH_EVERY_SECONDS)
    return info


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        info = authenticate_request(request)
        return None if info is None else (KeyPrincipal(info), info)

    def authenticate_header(self, request) -> str:
        return AUTH_HEADER


class HasKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, KeyInfo)


class HasWriteScope(BasePermission):
    message = "This needs a read-write key; this key may only read."
    code = "write_scope_required"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, KeyInfo) and request.auth.can_write
