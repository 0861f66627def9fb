"""Encryption at rest of provider API keys: Fernet with keys derived by HKDF.

The key that encrypts is the first of `FIELD_ENCRYPTION_KEYS` when that list is
set, else one derived from `SECRET_KEY`. Every key of the list, the one from
`SECRET_KEY` and those from `SECRET_KEY_FALLBACKS` decrypt, so a rotation is:
put the new secret first in `FIELD_ENCRYPTION_KEYS` (keep the old ones after
it), restart, run `manage.py rotate_endpoint_keys`, then drop the old ones.
"""

from __future__ import annotations

import base64
import functools

from django.conf import settings

_SALT = b"prompt-studio.providers"
_INFO = b"model-endpoint-api-key.v1"


class KeyUnreadable(Exception):
    """A stored key that none of the configured keys decrypts (a secret was rotated away)."""


def _derive(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


def _secrets() -> tuple[str, ...]:
    explicit = [s for s in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) if s]
    fallbacks = [s for s in getattr(settings, "SECRET_KEY_FALLBACKS", []) if s]
    ordered: list[str] = []
    for secret in [*explicit, settings.SECRET_KEY, *fallbacks]:
        if secret not in ordered:
            ordered.append(secret)
    return tuple(ordered)


@functools.lru_cache(maxsize=8)
def _fernet_for(secrets: tuple[str, ...]):
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(_derive(secret)) for secret in secrets])


def _fernet():
    return _fernet_for(_secrets())


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            "The stored API key cannot be decrypted with the configured keys; "
            "restore the old secret in FIELD_ENCRYPTION_KEYS or enter the key again."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt with the current first key (raises KeyUnreadable when no key reads it)."""
    if not token:
        return ""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable("A stored API key cannot be decrypted with the configured keys.") from None


def last4(plain: str) -> str:
    return plain[-4:] if len(plain) >= 8 else ""
