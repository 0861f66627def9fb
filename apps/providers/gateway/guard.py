"""What the gateway checks before any call is sent: no provider key in the prompt, and a local model that serves.

Every call of the studio passes here (playground, experiment cells, LLM judges, Test connection), so
no caller can forget these checks.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

from apps.providers.gateway.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from apps.providers.gateway.calls import Target

KEY_SHAPES = re.compile(r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})\b")
READINESS_CACHE_SECONDS = 2.0


class SecretInPrompt(GatewayError):
    """A prompt that holds a provider key: refused before anything is sent."""

    def __init__(self, message: str):
        super().__init__(ErrorKind.BAD_REQUEST, message, retryable=False)


def project_secrets(project_id: int | None) -> tuple[tuple[str, str], ...]:
    """(endpoint name, key) of every endpoint of the project that has a readable key of some length."""
    from apps.providers import crypto
    from apps.providers.models import ModelEndpoint

    if project_id is None:
        return ()
    found = []
    rows = ModelEndpoint.objects.filter(project_id=project_id).exclude(api_key_encrypted="")
    for name, encrypted in rows.values_list("name", "api_key_encrypted"):
        try:
            key = crypto.decrypt(encrypted)
        except crypto.KeyUnreadable:
            continue
        if len(key) >= 8:
            found.append((name, key))
    return tuple(found)


def request_text(request: dict[str, Any]) -> str:
    """The text a request sends: its prompt, or the content of its messages (text parts of multimodal ones)."""
    if "prompt" in request:
        return str(request.get("prompt") or "")
    if "input" in request:
        return "\n".join(str(text) for text in request["input"])
    parts = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "\n".join(parts)


def refuse_secrets(text: str, secrets: tuple[tuple[str, str], ...] = ()) -> None:
    """Raise SecretInPrompt when `text` holds one of the project's keys, or anything shaped like a provider key."""
    for name, key in secrets:
        if key in text:
            raise SecretInPrompt(
                f"The prompt contains the API key of the endpoint '{name}'. Remove it; nothing was sent."
            )
    if KEY_SHAPES.search(text):
        raise SecretInPrompt(
            "The prompt contains what looks like a provider API key (sk-…, AKIA…, AIza…). "
            "Keys belong in model endpoints, never in a prompt; nothing was sent."
        )


_readiness: dict[str, tuple[float, bool, str]] = {}
_readiness_lock = threading.Lock()


def readiness(model: str) -> tuple[bool, str]:
    """(ready, sentence) of the managed local model behind `model`; a ready model is read again after a
    couple of seconds (a calls-heavy worker would otherwise read its status file for every call)."""
    now = time.monotonic()
    with _readiness_lock:
        cached = _readiness.get(model)
    if cached is not None and now - cached[0] < READINESS_CACHE_SECONDS:
        return cached[1], cached[2]
    from apps.providers import local_models

    ready, sentence = local_models.readiness(local_models.spec_for_model(model))
    if ready:
        with _readiness_lock:
            _readiness[model] = (now, ready, sentence)
    return ready, sentence


def refuse_unready(target: Target) -> None:
    """A managed local endpoint whose model is not serving yet fails with its progress, not a refused connection."""
    if not target.local_model:
        return
    ready, sentence = readiness(target.local_model)
    if not ready:
        raise GatewayError(ErrorKind.PROVIDER_ERROR, sentence, retryable=False)


def forget_readiness() -> None:
    with _readiness_lock:
        _readiness.clear()


def check(target: Target, request: dict[str, Any]) -> None:
    """Every check the gateway runs before sending `request` to `target`."""
    refuse_secrets(request_text(request), target.secrets)
    refuse_unready(target)
