"""Sticky assignment of a key (an end user, a session) to an arm of a canary split.

The one implementation: the studio imports it (apps/api, apps/rollouts) and the client uses it offline,
so a key gets the same arm from both. A key's bucket is a stable hash, sha256 of
"<prompt>:<label>:<key>" read as a number, modulo BUCKETS; the canary takes buckets below its weight.
Raising the weight (10% -> 25%) therefore only moves keys into the canary, never out, and a key moves
only when the split changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

BUCKETS = 10_000  # weights are in basis points: 1000 = 10%
STABLE, CANARY = "stable", "canary"


def bucket(prompt: str, label: str, key: str) -> int:
    """The key's bucket, 0..BUCKETS-1, for this prompt and label."""
    digest = hashlib.sha256(f"{prompt}:{label}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm(prompt: str, label: str, key: str, canary_weight: int) -> str:
    """CANARY when the key's bucket is below the canary's weight (basis points), else STABLE."""
    if canary_weight <= 0:
        return STABLE
    return CANARY if bucket(prompt, label, key) < canary_weight else STABLE


def choose(document: dict[str, Any], key: str | None, label: str) -> tuple[dict[str, Any], str]:
    """(the version document to use, its arm) for a delivery document that may carry a `split`.

    `document` is what GET /api/v1/prompts/{name}?label=... (without key) or an entry of /releases
    answers: the stable version, and under `split` the canary's weight and its document. Without a key
    or a split the stable version is used.
    """
    split = document.get("split")
    if not split or key is None or not split.get("canary"):
        return document, (STABLE if split else "")
    chosen = arm(document["name"], label, key, int(split.get("canary_weight") or 0))
    if chosen == CANARY:
        return split["canary"], CANARY
    return document, STABLE
