"""Redaction at ingest: provider keys and other secrets are always masked; personal data by project setting.

The personal-data detectors are the dataset PII scan's (apps.datasets.quality):
e-mail addresses, phone numbers, card numbers (Luhn) and IBANs (mod 97).
"""

from __future__ import annotations

import re
from typing import Any

from apps.datasets.quality import find_pii, redact_text

SECRET_MASK = "[SECRET]"  # noqa: S105 - the mask, not a secret
DROPPED = "[DROPPED: personal data]"

_SECRETS = re.compile(
    r"sk-(?:proj-|ant-(?:api\d\d-)?|or-v1-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic, OpenRouter
    r"|ps_[A-Za-z0-9_\-]{40,}"  # the studio's own API keys
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abpr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google API keys
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r"|gsk_[A-Za-z0-9]{30,}"  # Groq
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)
# `api_key=...`, `"password": "..."`, `Authorization: Bearer ...`: the name stays, the value goes.
_NAMED_SECRET = re.compile(
    r"(?i)\b((?:api[_-]?key|secret(?:[_-]?key)?|password|passwd|access[_-]?token|auth[_-]?token|bearer)"
    r"[\"']?\s*[:=]?\s*[\"']?\s*)([A-Za-z0-9_\-./+=]{12,})"
)


# Every secret pattern contains one of these (lower-cased); a text with none is not scanned further.
# ("private key" is covered by "key".) A plain loop of `in` tests on the lower-cased text: faster than any()
# over a generator, and than one alternation regex, which Python's engine tries position by position.
_MARKERS = ("sk-", "ps_", "akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "aiza", "hf_", "gsk_", "key",
            "secret", "passw", "token", "bearer")  # fmt: skip


def _has_marker(text: str) -> bool:
    lowered = text.lower()
    for marker in _MARKERS:
        if marker in lowered:
            return True
    return False


def mask_secrets(text: str) -> str:
    if len(text) < 12 or not _has_marker(text):
        return text
    text = _SECRETS.sub(SECRET_MASK, text)
    return _NAMED_SECRET.sub(lambda m: m.group(1) + SECRET_MASK, text)


class Redactor:
    """Applies one project's policy to every string of a value (dicts and lists walked, keys kept).

    The result for each distinct text is remembered for the redactor's life (one batch): a span's
    searchable text is usually the very string of its messages, and roles and names repeat.
    """

    def __init__(self, pii_mode: str = "off"):
        self.pii_mode = pii_mode
        self._done: dict[str, str] = {}

    def text(self, text: str) -> str:
        done = self._done.get(text)
        if done is not None:
            return done
        result = mask_secrets(text)
        if self.pii_mode == "mask":
            result, _counts = redact_text(result)
        elif self.pii_mode == "drop" and find_pii(result):
            result = DROPPED
        self._done[text] = result
        return result

    def value(self, value: Any) -> Any:
        kind = value.__class__
        if kind is str:
            return self.text(value)
        if kind is list:
            return [self.value(v) for v in value]
        if kind is dict:
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value
