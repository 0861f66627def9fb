"""The failure taxonomy, the mapping of provider exceptions onto it, and the retry rules."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import TYPE_CHECKING

from django.conf import settings

from apps.providers.gateway.redaction import redact
from apps.providers.gateway.sdk import _litellm

if TYPE_CHECKING:
    from apps.providers.gateway.calls import Target

logger = logging.getLogger("apps.providers.gateway")


class ErrorKind:
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    PROVIDER_ERROR = "provider_error"

    labels = {
        AUTH: "Authentication",
        RATE_LIMIT: "Rate limited",
        TIMEOUT: "Timed out",
        BAD_REQUEST: "Bad request",
        CONTEXT_TOO_LONG: "Context too long",
        PROVIDER_ERROR: "Provider error",
    }


RETRYABLE = {ErrorKind.RATE_LIMIT, ErrorKind.TIMEOUT, ErrorKind.PROVIDER_ERROR}


class GatewayError(Exception):
    """A failed model call; `message` is meant for the user and never holds a key."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ):
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.retryable = kind in RETRYABLE if retryable is None else retryable
        self.attempts = attempts
        super().__init__(message)

    @property
    def label(self) -> str:
        return ErrorKind.labels.get(self.kind, self.kind)


_PREFIXES = re.compile(r"^(?:\s*(?:litellm\.\w+:|\w+Error:|\w+Exception -|Error code: \d+ -)\s*)+")


def _provider_message(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    text = _PREFIXES.sub("", text).strip()
    text = text.split("\nReceived Model Group", 1)[0].split(" LiteLLM Retried:", 1)[0].strip()
    return redact(text)[:500] or type(exc).__name__


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    response = getattr(exc, "response", None)
    for source in (headers, getattr(response, "headers", None)):
        if not source:
            continue
        value = source.get("retry-after-ms")
        if value:
            try:
                return float(value) / 1000
            except ValueError:
                pass
        value = source.get("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                import email.utils

                parsed = email.utils.parsedate_tz(value)
                if parsed is not None:
                    return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def _where(target: Target) -> str:
    return target.api_base or target.model.split("/", 1)[0]


def classify(exc: Exception, target: Target) -> GatewayError:
    """Map a litellm (or transport) exception to the gateway's taxonomy with a plain message."""
    if isinstance(exc, GatewayError):
        return exc
    litellm = _litellm()
    status = getattr(exc, "status_code", None)
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    detail = _provider_message(exc)
    name = target.name
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return GatewayError(
            ErrorKind.AUTH,
            f"The provider refused the API key of '{name}' ({status or 401}): {detail}. Check the endpoint's key.",
            status_code=status,
        )
    if isinstance(exc, litellm.RateLimitError):
        return GatewayError(
            ErrorKind.RATE_LIMIT,
            f"'{name}' is rate limited by the provider: {detail}",
            status_code=429,
            retry_after=_retry_after(exc),
        )
    if isinstance(exc, litellm.Timeout) or isinstance(exc, TimeoutError):
        return GatewayError(
            ErrorKind.TIMEOUT, f"'{name}' did not answer within {target.timeout:g} seconds.", status_code=status
        )
    if isinstance(exc, litellm.ContextWindowExceededError):
        return GatewayError(
            ErrorKind.CONTEXT_TOO_LONG,
            f"The prompt is longer than the context window of '{target.model}': {detail}",
            status_code=status,
        )
    if isinstance(exc, litellm.NotFoundError):
        return GatewayError(
            ErrorKind.BAD_REQUEST,
            f"The provider does not know the model '{target.model}' (or the base URL is wrong): {detail}",
            status_code=status,
        )
    if isinstance(exc, (litellm.BadRequestError, litellm.UnprocessableEntityError)):
        return GatewayError(ErrorKind.BAD_REQUEST, f"The provider refused the request: {detail}", status_code=status)
    if isinstance(exc, litellm.APIConnectionError) or "Connection error" in detail:
        return GatewayError(
            ErrorKind.PROVIDER_ERROR,
            f"Could not reach {_where(target)} for '{name}': the server is down, the URL is wrong, "
            "or the network blocks it.",
            status_code=None,
        )
    if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
        return GatewayError(ErrorKind.BAD_REQUEST, f"The provider refused the request: {detail}", status_code=status)
    return GatewayError(
        ErrorKind.PROVIDER_ERROR,
        f"'{name}' failed{f' with HTTP {status}' if status else ''}: {detail}",
        status_code=status,
    )


def _retry_settings() -> tuple[float, float, float]:
    return (
        float(getattr(settings, "GATEWAY_RETRY_BASE_SECONDS", 0.5)),
        float(getattr(settings, "GATEWAY_RETRY_MAX_SECONDS", 20.0)),
        float(getattr(settings, "GATEWAY_RETRY_AFTER_MAX_SECONDS", 60.0)),
    )


def backoff_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before attempt `attempt + 1`; None when the provider asks for too long a wait."""
    base, cap, retry_after_cap = _retry_settings()
    if retry_after is not None and retry_after > 0:
        if retry_after > retry_after_cap:
            return None
        return retry_after + random.uniform(0, min(1.0, retry_after * 0.1))
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _give_up(error: GatewayError, attempts: int, max_retries: int) -> GatewayError:
    error.attempts = attempts
    if attempts > 1:
        error.message = f"{error.message} (tried {attempts} times)"
        error.args = (error.message,)
    if error.kind == ErrorKind.RATE_LIMIT and error.retry_after and attempts <= max_retries:
        error.message = f"{error.message}; the provider asked to wait {error.retry_after:g} seconds"
        error.args = (error.message,)
    return error


def _log_outcome(target: Target, what: str, started: float, attempts: int, error: GatewayError | None) -> None:
    took = int((time.perf_counter() - started) * 1000)
    if error is None:
        logger.info("model call ok endpoint=%s model=%s %s attempts=%s ms=%s", target.name, target.model, what,
                    attempts, took)  # fmt: skip
    else:
        logger.warning("model call failed endpoint=%s model=%s %s kind=%s attempts=%s ms=%s", target.name,
                       target.model, what, error.kind, attempts, took)  # fmt: skip


def _retry_delay(target: Target, what: str, started: float, attempts: int, error: GatewayError, retries: int) -> float:
    """How long to wait before retrying a failed attempt; raises the error, logged, when it is not retried."""
    delay = backoff_delay(attempts, error.retry_after) if error.retryable and attempts <= retries else None
    if delay is None:
        _log_outcome(target, what, started, attempts, error)
        raise _give_up(error, attempts, retries)
    logger.info("retrying endpoint=%s kind=%s in %.2fs (attempt %s)", target.name, error.kind, delay, attempts)
    return delay
