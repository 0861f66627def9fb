"""What a call needs and returns, how its request is built, and the public calls (with limits and retries)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from apps.providers import crypto
from apps.providers.gateway import guard, limits
from apps.providers.gateway.errors import (
    ErrorKind,
    GatewayError,
    _give_up,
    _log_outcome,
    _retry_delay,
    classify,
)
from apps.providers.gateway.redaction import _remember_secret
from apps.providers.gateway.sdk import _litellm

logger = logging.getLogger("apps.providers.gateway")


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
    # The endpoint whose shared slots and minute budget the calls take (None: limited in this process only).
    endpoint_id: int | None = None
    # The model of a managed local endpoint, whose readiness is checked before each call.
    local_model: str = ""
    # (endpoint name, key) of the project's endpoints: a prompt holding one of them is refused.
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)

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
            endpoint_id=endpoint.pk,
            local_model=endpoint.model if endpoint.kind == "local" else "",
            secrets=guard.project_secrets(endpoint.project_id) if with_key else (),
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
    # Per output token, when the call asked for them (`logprobs`) and the endpoint returned them:
    # [{"token": str, "logprob": float, "top": [[token, logprob], ...]}], else None.
    logprobs: list[dict[str, Any]] | None = None
    # The tool calls the model asked for (OpenAI's shape: id, type, function {name, arguments as JSON text}).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _logprobs(choice: Any) -> list[dict[str, Any]] | None:
    """The choice's token log-probabilities in one shape, from chat's `logprobs.content` or completion's lists."""
    raw = _field(choice, "logprobs")
    if not raw:
        return None
    tokens: list[dict[str, Any]] = []
    content = _field(raw, "content")
    if content:  # chat: [{token, logprob, top_logprobs: [{token, logprob}]}]
        for item in content:
            top = [[_field(t, "token"), float(_field(t, "logprob"))] for t in (_field(item, "top_logprobs") or [])]
            tokens.append({"token": _field(item, "token"), "logprob": float(_field(item, "logprob")), "top": top})
        return tokens
    names, values = _field(raw, "tokens"), _field(raw, "token_logprobs")
    if names and values:  # text completion: parallel lists, top_logprobs as [{token: logprob}]
        tops = _field(raw, "top_logprobs") or [None] * len(names)
        for name, value, top in zip(names, values, tops, strict=False):
            pairs = sorted(((k, float(v)) for k, v in (top or {}).items()), key=lambda kv: -kv[1])
            tokens.append({"token": name, "logprob": float(value), "top": [list(p) for p in pairs]})
        return tokens
    return None


@dataclass
class Embeddings:
    vectors: list[list[float]]
    tokens_in: int | None
    cost: Decimal | None
    latency_ms: int
    request_id: str
    attempts: int
    model: str


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
    if target.local_model:
        params = _for_llama_cpp(params, messages)
    return "chat", {"messages": messages, **params}


def _for_llama_cpp(params: dict[str, Any], messages: list[dict]) -> dict[str, Any]:
    """A managed local model's server (llama-cpp-python) takes a schema only as {"type": "json_object",
    "schema": ...} (bound by a grammar), and calls tools only when tool_choice says so (OpenAI's default
    with tools is "auto"; llama.cpp's is none). Right after tool results it is left to answer in words:
    the small bundled model would otherwise call the same tool again."""
    response_format = params.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        params = {**params, "response_format": {"type": "json_object", "schema": schema}}
    after_tools = bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    if params.get("tools") and "tool_choice" not in params and not after_tools:
        params = {**params, "tool_choice": "auto"}
    return params


def describe_request(
    endpoint: Any, *, messages: list[dict] | None = None, prompt: str | None = None, params: dict | None = None
) -> tuple[str, dict[str, Any]]:
    """("chat" or "completion", exactly what would be sent except the key); raises GatewayError on a mismatch."""
    target = endpoint if isinstance(endpoint, Target) else Target.from_endpoint(endpoint, with_key=False)
    return _prepare(target, messages, prompt, params)


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    calls = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        calls.append(
            {
                "id": str(getattr(call, "id", "") or ""),
                "type": "function",
                "function": {
                    "name": str(getattr(function, "name", "") or ""),
                    "arguments": str(getattr(function, "arguments", "") or ""),
                },
            }
        )
    return calls


def supports_images(endpoint: Any) -> bool:
    """Whether the endpoint takes images in chat messages (litellm's content parts): litellm's model table says
    so, or it is the studio's simulated server (which reads content parts); a completion endpoint never does."""
    target = endpoint if isinstance(endpoint, Target) else Target.from_endpoint(endpoint, with_key=False)
    if target.mode == "completion":
        return False
    if target.own_server and not target.local_model:
        return True
    try:
        return bool(_litellm().supports_vision(model=target.model))
    except Exception:  # a model litellm does not know: not known to take images
        return False


def _parse(target: Target, how: str, response: Any, request: dict, attempts: int, latency: float, total: float):
    choice = response.choices[0]
    tool_calls: list[dict[str, Any]] = []
    if how == "chat":
        output = (getattr(choice.message, "content", None) or "") if choice.message else ""
        tool_calls = _tool_calls(choice.message) if choice.message else []
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
        logprobs=_logprobs(choice) if request.get("logprobs") else None,
        tool_calls=tool_calls,
    )


def _resolve(target_or_endpoint: Any) -> Target:
    return target_or_endpoint if isinstance(target_or_endpoint, Target) else Target.from_endpoint(target_or_endpoint)


def _slot_failed(target: Target, what: str, started: float, attempts: int, error: Exception, retries: int):
    """A call that got no slot: not started (the caller stopped it), or busy for too long (logged)."""
    if isinstance(error, limits.CallNotStarted):
        return error
    error = classify(error, target)
    _log_outcome(target, what, started, attempts, error)
    return _give_up(error, attempts, retries)


def _run_sync(
    target: Target,
    what: str,
    call: Callable[[], Any],
    *,
    timeout: float,
    max_retries: int,
    stopped: Callable[[], bool] | None = None,
):
    """Call in one of the endpoint's shared slots, with the gateway's retries; returns (response, attempts,
    latency, total). The slot is held for each attempt only, never during the wait before a retry."""
    limiter = limits.limiter()
    started = time.perf_counter()
    attempts = 0
    wait = None if stopped is not None else max(timeout, 1) * 2
    while True:
        attempts += 1
        attempt_started = None
        try:
            with limiter.slot(target, wait=wait, stopped=stopped):
                attempt_started = time.perf_counter()
                response = call()
        except Exception as exc:
            if attempt_started is None:
                raise _slot_failed(target, what, started, attempts, exc, max_retries) from None
            error = classify(exc, target)
        else:
            _log_outcome(target, what, started, attempts, None)
            return response, attempts, time.perf_counter() - attempt_started, time.perf_counter() - started
        time.sleep(_retry_delay(target, what, started, attempts, error, max_retries))


async def _run_async(
    target: Target,
    what: str,
    call: Callable[[], Any],
    *,
    timeout: float,
    max_retries: int,
    stopped: Callable[[], bool] | None = None,
    settle: Callable[[Any, int, float, float], None] | None = None,
):
    """The async twin of `_run_sync`. `settle(response, attempts, latency, total)` runs while the slot is still
    held (its exceptions are not the call's: they are raised, never retried), so what it records (a budget's
    spending) is seen by the next call that takes the slot."""
    limiter = limits.limiter()
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        attempt_started = None
        settling = False
        try:
            async with limiter.aslot(target, wait=None, stopped=stopped):
                attempt_started = time.perf_counter()
                response = await asyncio.wait_for(call(), timeout=timeout + 5)
                latency, total = time.perf_counter() - attempt_started, time.perf_counter() - started
                if settle is not None:
                    settling = True
                    settle(response, attempts, latency, total)
        except Exception as exc:
            if settling:
                raise
            if attempt_started is None:
                raise _slot_failed(target, what, started, attempts, exc, max_retries) from None
            error = classify(exc, target)
        else:
            _log_outcome(target, what, started, attempts, None)
            return response, attempts, latency, total
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
    stopped: Callable[[], bool] | None = None,
) -> Completion:
    """One chat or text completion, whichever the endpoint does (a text prompt becomes one user message).

    `stopped` is asked while the call waits for a slot; when it says so, CallNotStarted is raised.
    """
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    guard.check(target, request)
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

    response, attempts, latency, total = _run_sync(
        target, how, call, timeout=timeout, max_retries=retries, stopped=stopped
    )
    return _parse(target, how, response, request, attempts, latency, total)


async def agenerate(
    endpoint: Any,
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    stopped: Callable[[], bool] | None = None,
    settle: Callable[[Completion], None] | None = None,
) -> Completion:
    """The async twin of `generate` (pass a Target built outside the event loop, or an endpoint).

    `settle` is given the completion before its slot is freed: a caller that stops on a budget records the
    cost there, so a call waiting for the slot cannot start before the spending is counted."""
    target = _resolve(endpoint)
    how, request = _prepare(target, messages, prompt, params)
    guard.check(target, request)
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

    completions: list[Completion] = []

    def parsed(response: Any, attempts: int, latency: float, total: float) -> None:
        completions.append(_parse(target, how, response, request, attempts, latency, total))
        if settle is not None:
            settle(completions[0])

    await _run_async(target, how, call, timeout=timeout, max_retries=retries, stopped=stopped, settle=parsed)
    return completions[0]


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
    guard.check(target, {"input": list(inputs)})
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
    guard.check(target, {"input": list(inputs)})
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
