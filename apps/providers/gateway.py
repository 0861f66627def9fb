"""The model gateway: every model call of the studio goes through here, and only here is litellm imported.

Each call has an explicit timeout, retries rate limits, timeouts and server
errors with exponential backoff and jitter (honouring Retry-After), respects
the endpoint's concurrency and requests-per-minute limits (per process), maps
every failure to a small taxonomy with a message a user understands, and
returns the output with its finish reason, tokens, cost, latency and the
provider's request id. The API key is decrypted only here, only for the call,
and is redacted from every log record of the process.

litellm is imported lazily (it takes seconds) and configured for offline use:
the bundled price map (`LITELLM_LOCAL_MODEL_COST_MAP=True`), no telemetry.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.providers import crypto

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


@dataclass(frozen=True)
class Target:
    """Everything a call needs, detached from the database (so async code and benchmarks can use it)."""

    name: str
    model: str
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    mode: str = "chat"
    default_params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    max_retries: int = 3
    max_concurrency: int = 4
    requests_per_minute: int | None = None
    price_input_per_mtok: Decimal | None = None
    price_output_per_mtok: Decimal | None = None
    limiter_key: str = ""
    # The studio's own OpenAI-compatible servers (simulated, local llama.cpp): chat goes through litellm's
    # generic OpenAI-compatible HTTP route instead of the openai SDK, about 1 ms less CPU per call.
    own_server: bool = False

    @classmethod
    def from_endpoint(cls, endpoint, *, with_key: bool = True) -> Target:
        api_key = ""
        if with_key:
            try:
                api_key = crypto.decrypt(endpoint.api_key_encrypted)
            except crypto.KeyUnreadable as exc:
                raise GatewayError(ErrorKind.AUTH, str(exc), retryable=False) from None
            _remember_secret(api_key)
        return cls(
            name=endpoint.name,
            model=endpoint.model,
            api_base=endpoint.api_base,
            api_key=api_key,
            mode=endpoint.mode,
            default_params=dict(endpoint.default_params or {}),
            timeout=float(endpoint.timeout_seconds),
            max_retries=int(endpoint.max_retries),
            max_concurrency=max(1, int(endpoint.max_concurrency)),
            requests_per_minute=endpoint.requests_per_minute,
            price_input_per_mtok=endpoint.price_input_per_mtok,
            price_output_per_mtok=endpoint.price_output_per_mtok,
            limiter_key=f"endpoint:{endpoint.pk}:{endpoint.max_concurrency}:{endpoint.requests_per_minute}",
            own_server=endpoint.kind in ("simulated", "local") and bool(endpoint.api_base),
        )


@dataclass
class Completion:
    output: str
    finish_reason: str
    tokens_in: int | None
    tokens_out: int | None
    cost: Decimal | None
    latency_ms: int
    request_id: str
    attempts: int
    model: str
    request: dict[str, Any]
    total_ms: int = 0


@dataclass
class Embeddings:
    vectors: list[list[float]]
    tokens_in: int | None
    cost: Decimal | None
    latency_ms: int
    request_id: str
    attempts: int
    model: str


# --- litellm, configured once, imported lazily -----------------------------------------------------


@functools.cache
def _litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the price map from the internet
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import warnings

    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.drop_params = True  # a parameter a provider does not take is dropped, not an error
    litellm.turn_off_message_logging = True
    litellm.num_retries = 0  # the gateway retries, with its own rules
    warnings.filterwarnings("ignore", message=".*Pydantic serializer warnings.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="pydantic.*")
    return litellm


def warm_up() -> None:
    """Import litellm ahead of the first call (a worker does this in the background at start)."""
    _litellm()


# --- keys never reach a log line -------------------------------------------------------------------

_secrets: set[str] = set()
_redaction_installed = False
_redaction_lock = threading.Lock()


def _remember_secret(secret: str) -> None:
    global _redaction_installed
    if len(secret) < 6:
        return
    _secrets.add(secret)
    if _redaction_installed:
        return
    with _redaction_lock:
        if _redaction_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            if _secrets:
                try:
                    message = record.getMessage()
                except Exception:  # a broken log call is not ours to fix
                    return record
                if any(secret in message for secret in _secrets):
                    for secret in list(_secrets):
                        message = message.replace(secret, "[redacted]")
                    record.msg, record.args = message, ()
            return record

        logging.setLogRecordFactory(factory)
        _redaction_installed = True


def redact(text: str) -> str:
    for secret in list(_secrets):
        text = text.replace(secret, "[redacted]")
    return text


# --- limits per endpoint (per process) -------------------------------------------------------------


class _Limiter:
    def __init__(self, concurrency: int, per_minute: int | None):
        self.concurrency = concurrency
        self.per_minute = per_minute
        self.semaphore = threading.BoundedSemaphore(concurrency)
        self.starts: deque[float] = deque()
        self.lock = threading.Lock()
        self.async_semaphores: dict[int, asyncio.Semaphore] = {}

    def wait_for_rate(self) -> float:
        """Seconds to wait before the next request may start (0 when it may start now; it is then counted)."""
        if not self.per_minute:
            return 0.0
        with self.lock:
            now = time.monotonic()
            while self.starts and now - self.starts[0] >= 60:
                self.starts.popleft()
            if len(self.starts) < self.per_minute:
                self.starts.append(now)
                return 0.0
            return 60 - (now - self.starts[0]) + 0.01

    def pace(self) -> None:
        """Sleep until this minute's request budget lets the next request start (and count it)."""
        wait = self.wait_for_rate()
        while wait > 0:
            time.sleep(min(wait, 5))
            wait = self.wait_for_rate()

    async def apace(self) -> None:
        """The async twin of `pace`."""
        wait = self.wait_for_rate()
        while wait > 0:
            await asyncio.sleep(min(wait, 5))
            wait = self.wait_for_rate()

    def take_slot(self, target: Target, what: str, started: float, attempts: int, timeout: float, retries: int):
        """Take a concurrency slot (sync calls), or give up, logged, when none frees within twice the timeout."""
        if not self.semaphore.acquire(timeout=max(timeout, 1) * 2):
            error = GatewayError(ErrorKind.TIMEOUT, f"'{target.name}' is busy: no free slot within {timeout:g} s.")
            _log_outcome(target, what, started, attempts, error)
            raise _give_up(error, attempts, retries)

    def async_semaphore(self) -> asyncio.Semaphore:
        loop_id = id(asyncio.get_running_loop())
        with self.lock:
            if loop_id not in self.async_semaphores:
                self.async_semaphores[loop_id] = asyncio.Semaphore(self.concurrency)
            return self.async_semaphores[loop_id]


_limiters: dict[str, _Limiter] = {}
_limiters_lock = threading.Lock()


def _limiter(target: Target) -> _Limiter:
    key = target.limiter_key or "|".join(
        str(part) for part in (target.model, target.api_base, target.max_concurrency, target.requests_per_minute)
    )
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = _Limiter(target.max_concurrency, target.requests_per_minute)
        return _limiters[key]


# --- errors ----------------------------------------------------------------------------------------

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


# --- requests --------------------------------------------------------------------------------------

_CALL_KEYS = {
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "response_format",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "logit_bias",
    "user",
    "tools",
    "tool_choice",
}
_FORBIDDEN_PARAMS = {"api_key", "api_base", "base_url", "model", "messages", "prompt", "timeout", "extra_headers"}


def merge_params(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Endpoint defaults, then the prompt's config, then per-call values; keys and URLs are never taken from them."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if not layer:
            continue
        for key, value in layer.items():
            if key == "extra" and isinstance(value, dict):
                merged.update({k: v for k, v in value.items() if k.lower() not in _FORBIDDEN_PARAMS})
            elif key.lower() in _FORBIDDEN_PARAMS or value in (None, ""):
                continue
            else:
                merged[key] = value
    return merged


def _call_kwargs(target: Target, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {**params, "timeout": timeout, "max_retries": 0}
    if target.api_base:
        kwargs["api_base"] = target.api_base
        # Never let litellm fall back to a key from the environment for a URL an admin typed.
        kwargs["api_key"] = target.api_key or "no-key"
    elif target.api_key:
        kwargs["api_key"] = target.api_key
    return kwargs


def _chat_model(target: Target) -> str:
    """The litellm model string of a chat call (what the endpoint says, but see Target.own_server)."""
    if target.own_server and target.model.startswith("openai/"):
        return "hosted_vllm/" + target.model.removeprefix("openai/")
    return target.model


def _completion_model(target: Target) -> str:
    if target.model.startswith("openai/"):
        return "text-completion-openai/" + target.model.removeprefix("openai/")
    return target.model


def _cost(target: Target, model: str, tokens_in: int | None, tokens_out: int | None) -> Decimal | None:
    if target.price_input_per_mtok is not None or target.price_output_per_mtok is not None:
        price_in = Decimal(target.price_input_per_mtok or 0)
        price_out = Decimal(target.price_output_per_mtok or 0)
        return (Decimal(tokens_in or 0) * price_in + Decimal(tokens_out or 0) * price_out) / Decimal(1_000_000)
    if model in _unpriced:
        return None
    try:
        prompt_cost, completion_cost = _litellm().cost_per_token(
            model=model, prompt_tokens=tokens_in or 0, completion_tokens=tokens_out or 0
        )
    except Exception:  # litellm raises a bare Exception for a model missing from its price map
        _unpriced.add(model)  # the bundled map is fixed for the process's life: no need to ask again
        return None
    return Decimal(str(prompt_cost)) + Decimal(str(completion_cost))


_unpriced: set[str] = set()


def estimate_cost(target: Target, tokens_in: int, tokens_out: int) -> Decimal | None:
    """The price of a call of this size on this endpoint, or None when no price is known."""
    return _cost(target, target.model, tokens_in, tokens_out)


def count_tokens(target: Target, *, messages: list[dict] | None = None, prompt: str | None = None) -> int:
    """Prompt tokens of a call, by litellm's tokenizer for the model (a generic one when unknown)."""
    litellm = _litellm()
    try:
        if messages is not None:
            return int(litellm.token_counter(model=target.model, messages=messages))
        return int(litellm.token_counter(model=target.model, text=prompt or ""))
    except Exception:  # an unknown model or tokenizer: fall back to words, which is close enough to estimate
        text = prompt or " ".join(m.get("content", "") for m in messages or [])
        return max(1, round(len(text.split()) * 1.3))


def _request_id(response: Any) -> str:
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    for key in ("llm_provider-x-request-id", "llm_provider-request-id", "x-request-id"):
        if headers.get(key):
            return str(headers[key])[:200]
    return str(getattr(response, "id", "") or "")[:200]


def _usage(response: Any) -> tuple[int | None, int | None]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None, None
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


def _prepare(
    target: Target, messages: list[dict] | None, prompt: str | None, params: dict | None
) -> tuple[str, dict[str, Any]]:
    """Choose chat or text completion for the endpoint and build what is sent (without the key)."""
    params = merge_params(target.default_params, params)
    if messages is None and prompt is None:
        raise GatewayError(ErrorKind.BAD_REQUEST, "Nothing to send: give messages or a prompt.", retryable=False)
    if target.mode == "completion":
        if prompt is None:
            raise GatewayError(
                ErrorKind.BAD_REQUEST,
                f"'{target.name}' does plain text completions; run a text prompt on it, not chat messages.",
                retryable=False,
            )
        return "completion", {"prompt": prompt, **params}
    if messages is None:
        messages = [{"role": "user", "content": prompt}]
    return "chat", {"messages": messages, **params}


def describe_request(
    endpoint: Any, *, messages: list[dict] | None = None, prompt: str | None = None, params: dict | None = None
) -> tuple[str, dict[str, Any]]:
    """("chat" or "completion", exactly what would be sent except the key); raises GatewayError on a mismatch."""
    target = endpoint if isinstance(endpoint, Target) else Target.from_endpoint(endpoint, with_key=False)
    return _prepare(target, messages, prompt, params)


def _parse(target: Target, how: str, response: Any, request: dict, attempts: int, latency: float, total: float):
    choice = response.choices[0]
    if how == "chat":
        output = (getattr(choice.message, "content", None) or "") if choice.message else ""
    else:
        output = getattr(choice, "text", "") or ""
    tokens_in, tokens_out = _usage(response)
    model = target.model if how == "chat" else _completion_model(target)
    return Completion(
        output=output,
        finish_reason=str(getattr(choice, "finish_reason", "") or ""),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=_cost(target, target.model, tokens_in, tokens_out),
        latency_ms=int(latency * 1000),
        request_id=_request_id(response),
        attempts=attempts,
        model=model,
        request=request,
        total_ms=int(total * 1000),
    )


def _resolve(target_or_endpoint: Any) -> Target:
    return target_or_endpoint if isinstance(target_or_endpoint, Target) else Target.from_endpoint(target_or_endpoint)


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


def _run_sync(target: Target, what: str, call: Callable[[], Any], *, timeout: float, max_retries: int):
    """Call with the endpoint's limits and the gateway's retries; returns (response, attempts, latency)."""
    limiter = _limiter(target)
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        limiter.pace()
        limiter.take_slot(target, what, started, attempts, timeout, max_retries)
        attempt_started = time.perf_counter()
        try:
            response = call()
        except Exception as exc:
            error = classify(exc, target)
        else:
            _log_outcome(target, what, started, attempts, None)
            return response, attempts, time.perf_counter() - attempt_started, time.perf_counter() - started
        finally:
            limiter.semaphore.release()
        time.sleep(_retry_delay(target, what, started, attempts, error, max_retries))


async def _run_async(target: Target, what: str, call: Callable[[], Any], *, timeout: float, max_retries: int):
    limiter = _limiter(target)
    semaphore = limiter.async_semaphore()
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        await limiter.apace()
        async with semaphore:
            attempt_started = time.perf_counter()
            try:
                response = await asyncio.wait_for(call(), timeout=timeout + 5)
            except Exception as exc:
                error = classify(exc, target)
            else:
                _log_outcome(target, what, started, attempts, None)
                return response, attempts, time.perf_counter() - attempt_started, time.perf_counter() - started
        await asyncio.sleep(_retry_delay(target, what, started, attempts, error, max_retries))


# --- the public calls ------------------------------------------------------------------------------


def generate(
    endpoint: Any,
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> Completion:
    """One chat or text completion, whichever the endpoint does (a text prompt becomes one user message)."""
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    litellm = _litellm()
    kwargs = _call_kwargs(target, {k: v for k, v in request.items()}, timeout)
    if how == "chat":

        def call():
            return litellm.completion(model=_chat_model(target), **kwargs)
    else:

        def call():
            return litellm.text_completion(model=_completion_model(target), **kwargs)

    response, attempts, latency, total = _run_sync(target, how, call, timeout=timeout, max_retries=retries)
    return _parse(target, how, response, request, attempts, latency, total)


async def agenerate(
    endpoint: Any,
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> Completion:
    """The async twin of `generate` (pass a Target built outside the event loop, or an endpoint)."""
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    litellm = _litellm()
    kwargs = _call_kwargs(target, dict(request), timeout)
    if how == "chat":

        def call():
            return litellm.acompletion(model=_chat_model(target), **kwargs)
    else:

        def call():
            return litellm.atext_completion(model=_completion_model(target), **kwargs)

    response, attempts, latency, total = await _run_async(target, how, call, timeout=timeout, max_retries=retries)
    return _parse(target, how, response, request, attempts, latency, total)


def chat(endpoint: Any, messages: list[dict], **options: Any) -> Completion:
    return generate(endpoint, messages=messages, **options)


async def achat(endpoint: Any, messages: list[dict], **options: Any) -> Completion:
    return await agenerate(endpoint, messages=messages, **options)


def complete(endpoint: Any, prompt: str, **options: Any) -> Completion:
    return generate(endpoint, prompt=prompt, **options)


async def acomplete(endpoint: Any, prompt: str, **options: Any) -> Completion:
    return await agenerate(endpoint, prompt=prompt, **options)


def _embedding_result(target: Target, response: Any, attempts: int, latency: float) -> Embeddings:
    vectors = [item["embedding"] if isinstance(item, dict) else item.embedding for item in response.data]
    tokens_in, _ = _usage(response)
    return Embeddings(
        vectors=vectors,
        tokens_in=tokens_in,
        cost=_cost(target, target.model, tokens_in, 0),
        latency_ms=int(latency * 1000),
        request_id=_request_id(response),
        attempts=attempts,
        model=target.model,
    )


def embed(endpoint: Any, inputs: list[str], *, timeout: float | None = None, max_retries: int | None = None):
    """Embeddings of `inputs`, in order."""
    target = _resolve(endpoint)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    litellm = _litellm()
    kwargs = _call_kwargs(target, {}, timeout)

    def call():
        return litellm.embedding(model=target.model, input=list(inputs), **kwargs)

    response, attempts, latency, _total = _run_sync(target, "embedding", call, timeout=timeout, max_retries=retries)
    return _embedding_result(target, response, attempts, latency)


async def aembed(endpoint: Any, inputs: list[str], *, timeout: float | None = None, max_retries: int | None = None):
    target = _resolve(endpoint)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    litellm = _litellm()
    kwargs = _call_kwargs(target, {}, timeout)

    def call():
        return litellm.aembedding(model=target.model, input=list(inputs), **kwargs)

    response, attempts, latency, _total = await _run_async(
        target, "embedding", call, timeout=timeout, max_retries=retries
    )
    return _embedding_result(target, response, attempts, latency)


def check_connection(endpoint: Any) -> Completion:
    """A one-token request without retries; raises GatewayError with the provider's error in plain words."""
    target = _resolve(endpoint)
    timeout = min(target.timeout, 30.0)
    if target.mode == "completion":
        return generate(target, prompt="Hello", params={"max_tokens": 1}, timeout=timeout, max_retries=0)
    return generate(
        target, messages=[{"role": "user", "content": "Say OK."}], params={"max_tokens": 1}, timeout=timeout,
        max_retries=0,
    )  # fmt: skip


# --- streaming -------------------------------------------------------------------------------------
#
# `stream` / `astream` yield the text deltas as they arrive and end with one StreamedCompletion (the
# Completion that `generate` returns, plus the time to the first token). They keep the endpoint's
# limits for the whole stream, and the gateway's timeout, taxonomy and retries: a failure before the
# first token is retried like a failed `generate`; after it nothing is retried (the caller has shown
# the text already) and StreamInterrupted carries the output so far with its tokens and cost.


@dataclass
class StreamedCompletion(Completion):
    time_to_first_token_ms: int | None = None
    # True when the provider sent no usage and the tokens were counted by the gateway's tokenizer.
    tokens_estimated: bool = False


class StreamInterrupted(GatewayError):
    """A stream that failed after its first token; `partial` is the output so far, accounted."""

    def __init__(self, error: GatewayError, partial: StreamedCompletion):
        super().__init__(
            error.kind, error.message, status_code=error.status_code, retryable=False, attempts=error.attempts
        )
        self.partial = partial


@functools.cache
def _stream_support(model: str) -> tuple[bool, bool]:
    """(streams at all, takes stream_options) for a litellm model string, from litellm's provider tables."""
    litellm = _litellm()
    try:
        name, provider, _key, _base = litellm.get_llm_provider(model)
        supported = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or []
    except Exception:  # a provider litellm does not know cannot be streamed through it either
        return False, False
    return "stream" in supported, "stream_options" in supported


def _stream_model(target: Target, how: str) -> str:
    return target.model if how == "chat" else _completion_model(target)


def supports_streaming(endpoint: Any) -> bool:
    """Whether calls to this endpoint can stream; an endpoint whose default params say `"stream": false` never does."""
    target = endpoint if isinstance(endpoint, Target) else Target.from_endpoint(endpoint, with_key=False)
    if target.default_params.get("stream") is False:
        return False
    how = "completion" if target.mode == "completion" else "chat"
    return _stream_support(_stream_model(target, how))[0]


def _stream_kwargs(target: Target, how: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    kwargs = _call_kwargs(target, dict(request), timeout)
    kwargs["stream"] = True
    if _stream_support(_stream_model(target, how))[1]:
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def _without_stream_options(error: GatewayError, kwargs: dict[str, Any]) -> bool:
    """A server that refuses stream_options (some OpenAI-compatible ones do) is asked again without it."""
    if error.kind == ErrorKind.BAD_REQUEST and "stream_options" in kwargs and "stream_options" in error.message:
        del kwargs["stream_options"]
        return True
    return False


class _StreamState:
    """What one attempt of a stream has received; turns it into deltas and, at the end, a StreamedCompletion."""

    def __init__(self, target: Target, how: str, request: dict[str, Any], started: float):
        self.target, self.how, self.request, self.started = target, how, request, started
        self.attempt_started = started
        self.attempts = 0
        self.pieces: list[str] = []
        self.first_token_at: float | None = None
        self.finish_reason = ""
        self.usage: tuple[int | None, int | None] | None = None
        self.chunk_id = ""

    def begin_attempt(self) -> None:
        self.attempts += 1
        self.attempt_started = time.perf_counter()

    @property
    def started_output(self) -> bool:
        return self.first_token_at is not None

    def feed(self, chunk: Any) -> str:
        """The text of one chunk ('' when it has none), noting finish reason and usage."""
        self.chunk_id = self.chunk_id or str(getattr(chunk, "id", "") or "")
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "completion_tokens", None) is not None:
            self.usage = (getattr(usage, "prompt_tokens", None), usage.completion_tokens)
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            return ""
        choice = choices[0]
        if getattr(choice, "finish_reason", None):
            self.finish_reason = str(choice.finish_reason)
        if self.how == "chat":
            delta = getattr(choice, "delta", None)
            text = (getattr(delta, "content", None) or "") if delta is not None else ""
        else:
            text = getattr(choice, "text", None) or ""
        if text:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.pieces.append(text)
        return text

    def completion(self, response: Any) -> StreamedCompletion:
        output = "".join(self.pieces)
        estimated = self.usage is None
        if estimated:
            if "messages" in self.request:
                tokens_in = count_tokens(self.target, messages=self.request["messages"])
            else:
                tokens_in = count_tokens(self.target, prompt=self.request.get("prompt") or "")
            tokens_out = count_tokens(self.target, prompt=output) if output else 0
        else:
            tokens_in, tokens_out = self.usage
        now = time.perf_counter()
        ttft = None if self.first_token_at is None else int((self.first_token_at - self.attempt_started) * 1000)
        return StreamedCompletion(
            output=output,
            finish_reason=self.finish_reason,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=_cost(self.target, self.target.model, tokens_in, tokens_out),
            latency_ms=int((now - self.attempt_started) * 1000),
            request_id=_stream_request_id(response) or self.chunk_id[:200],
            attempts=self.attempts,
            model=_stream_model(self.target, self.how),
            request=self.request,
            total_ms=int((now - self.started) * 1000),
            time_to_first_token_ms=ttft,
            tokens_estimated=estimated,
        )

    def interrupted(self, exc: Exception, response: Any) -> StreamInterrupted:
        error = classify(exc, self.target)
        received = sum(len(piece) for piece in self.pieces)
        where = f"in the middle of its answer (after {received} characters)"
        detail = _provider_message(exc).split(" Original exception:", 1)[0].rstrip(".")
        if error.kind == ErrorKind.TIMEOUT:
            what = f"sent nothing for {self.target.timeout:g} seconds {where}"
        elif "Connection error" in detail or not detail:
            what = f"closed the connection {where}"
        else:
            what = f"failed {where}: {detail}"
        error.message = f"'{self.target.name}' {what}; the output so far is kept."
        error.args = (error.message,)
        error.attempts = self.attempts
        return StreamInterrupted(error, self.completion(response))


def _stream_layers(response: Any) -> list[Any]:
    """The wrapper litellm returns and the streams inside it, outermost first."""
    layers = [response]
    while len(layers) < 4 and getattr(layers[-1], "completion_stream", None) is not None:
        layers.append(layers[-1].completion_stream)
    return layers


def _stream_request_id(response: Any) -> str:
    for layer in _stream_layers(response):
        if getattr(layer, "_hidden_params", None):
            found = _request_id(layer)
            if found:
                return found
    return ""


class _StreamCutOff(Exception):
    """A stream that ended without its end: litellm's async transport reports a dropped connection so."""

    def __init__(self) -> None:
        super().__init__("Connection error.")


def _ended_early(target: Target, how: str, response: Any) -> bool:
    """Whether an OpenAI-compatible stream stopped before its finish reason (every complete one sends it)."""
    if not _stream_model(target, how).startswith(("openai/", "text-completion-openai/")):
        return False
    for layer in _stream_layers(response):
        if hasattr(layer, "received_finish_reason"):
            return layer.received_finish_reason is None and getattr(layer, "intermittent_finish_reason", None) is None
    return False


def _close_stream(response: Any) -> None:
    """Close the HTTP response under a stream that is abandoned, so the provider stops generating."""
    for layer in reversed(_stream_layers(response)):
        close = getattr(layer, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # best effort: the connection is dropped with the object anyway
                logger.debug("closing an abandoned stream failed", exc_info=True)
            return


async def _aclose_stream(response: Any) -> None:
    for layer in reversed(_stream_layers(response)):
        aclose = getattr(layer, "aclose", None)
        if callable(aclose):
            try:
                await aclose()
            except Exception:
                logger.debug("closing an abandoned stream failed", exc_info=True)
            return


def _stream_open(target: Target, how: str, kwargs: dict[str, Any]) -> Any:
    litellm = _litellm()
    if how == "chat":
        return litellm.completion(model=target.model, **kwargs)
    return litellm.text_completion(model=_completion_model(target), **kwargs)


async def _astream_open(target: Target, how: str, kwargs: dict[str, Any]) -> Any:
    litellm = _litellm()
    if how == "chat":
        return await litellm.acompletion(model=target.model, **kwargs)
    return await litellm.atext_completion(model=_completion_model(target), **kwargs)


def _stream_retry_delay(
    state: _StreamState, error: GatewayError, kwargs: dict[str, Any], retries: int, what: str
) -> float:
    """After a stream failed before its first token: how long to wait before the next attempt (0: at once,
    without stream_options); raises the error, logged, when it is not retried."""
    if _without_stream_options(error, kwargs):
        state.attempts -= 1
        return 0.0
    return _retry_delay(state.target, what, state.started, state.attempts, error, retries)


def stream(
    endpoint: Any,
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> Iterator[str | StreamedCompletion]:
    """Yield the text deltas of a chat or text completion as they arrive, then one StreamedCompletion.

    `timeout` bounds the wait for the first token and every pause between chunks, so a long answer
    that keeps coming is not cut. Raises GatewayError before the first token (after the retries) and
    StreamInterrupted after it.
    """
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    kwargs = _stream_kwargs(target, how, request, timeout)
    limiter = _limiter(target)
    state = _StreamState(target, how, request, time.perf_counter())
    what = f"{how} stream"
    while True:
        state.begin_attempt()
        limiter.pace()
        limiter.take_slot(target, what, state.started, state.attempts, timeout, retries)
        response = None
        try:
            response = _stream_open(target, how, kwargs)
            for chunk in response:
                text = state.feed(chunk)
                if text:
                    yield text
            if _ended_early(target, how, response):
                raise _StreamCutOff()
        except GeneratorExit:
            if response is not None:
                _close_stream(response)
            raise
        except Exception as exc:
            if state.started_output:
                interrupted = state.interrupted(exc, response)
                _log_outcome(target, what, state.started, state.attempts, interrupted)
                raise interrupted from None
            if response is not None:
                _close_stream(response)
            error = classify(exc, target)
        else:
            _log_outcome(target, what, state.started, state.attempts, None)
            yield state.completion(response)
            return
        finally:
            limiter.semaphore.release()
        delay = _stream_retry_delay(state, error, kwargs, retries, what)
        if delay:
            time.sleep(delay)


async def astream(
    endpoint: Any,
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> AsyncIterator[str | StreamedCompletion]:
    """The async twin of `stream` (pass a Target built outside the event loop, or an endpoint)."""
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    kwargs = _stream_kwargs(target, how, request, timeout)
    limiter = _limiter(target)
    semaphore = limiter.async_semaphore()
    state = _StreamState(target, how, request, time.perf_counter())
    what = f"{how} stream"
    while True:
        state.begin_attempt()
        await limiter.apace()
        async with semaphore:
            response = None
            try:
                response = await asyncio.wait_for(_astream_open(target, how, kwargs), timeout=timeout + 5)
                chunks = response.__aiter__()
                while True:
                    try:
                        # litellm times out a silent stream itself; this is the backstop if it does not.
                        chunk = await asyncio.wait_for(chunks.__anext__(), timeout=timeout + 5)
                    except StopAsyncIteration:
                        break
                    text = state.feed(chunk)
                    if text:
                        yield text
                if _ended_early(target, how, response):
                    raise _StreamCutOff()
            except (GeneratorExit, asyncio.CancelledError):
                if response is not None:
                    await _aclose_stream(response)
                raise
            except Exception as exc:
                if response is not None and not state.started_output:
                    await _aclose_stream(response)
                if state.started_output:
                    interrupted = state.interrupted(exc, response)
                    _log_outcome(target, what, state.started, state.attempts, interrupted)
                    raise interrupted from None
                error = classify(exc, target)
            else:
                _log_outcome(target, what, state.started, state.attempts, None)
                yield state.completion(response)
                return
        delay = _stream_retry_delay(state, error, kwargs, retries, what)
        if delay:
            await asyncio.sleep(delay)
