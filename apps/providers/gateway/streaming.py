"""Streaming calls.

`stream` / `astream` yield the text deltas as they arrive and end with one StreamedCompletion (the
Completion that `generate` returns, plus the time to the first token). They keep the endpoint's
limits for the whole stream, and the gateway's timeout, taxonomy and retries: a failure before the
first token is retried like a failed `generate`; after it nothing is retried (the caller has shown
the text already) and StreamInterrupted carries the output so far with its tokens and cost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from apps.providers.gateway import guard, limits
from apps.providers.gateway.calls import (
    Completion,
    Target,
    _call_kwargs,
    _completion_model,
    _cost,
    _prepare,
    _request_id,
    _resolve,
    _slot_failed,
    count_tokens,
)
from apps.providers.gateway.errors import (
    ErrorKind,
    GatewayError,
    _log_outcome,
    _provider_message,
    _retry_delay,
    classify,
)
from apps.providers.gateway.sdk import _litellm

logger = logging.getLogger("apps.providers.gateway")


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
    guard.check(target, request)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    kwargs = _stream_kwargs(target, how, request, timeout)
    limiter = limits.limiter()
    state = _StreamState(target, how, request, time.perf_counter())
    what = f"{how} stream"
    while True:
        state.begin_attempt()
        # The slot is held for the whole attempt, across the yields, so it cannot be a `with` here.
        slot = limiter.slot(target, wait=max(timeout, 1) * 2)
        try:
            slot.__enter__()
        except Exception as exc:
            raise _slot_failed(target, what, state.started, state.attempts, exc, retries) from None
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
            slot.__exit__(None, None, None)
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
    guard.check(target, request)
    timeout = timeout if timeout is not None else target.timeout
    retries = target.max_retries if max_retries is None else max_retries
    kwargs = _stream_kwargs(target, how, request, timeout)
    limiter = limits.limiter()
    state = _StreamState(target, how, request, time.perf_counter())
    what = f"{how} stream"
    while True:
        state.begin_attempt()
        try:
            slot_context = limiter.aslot(target, wait=None)
            await slot_context.__aenter__()
        except Exception as exc:
            raise _slot_failed(target, what, state.started, state.attempts, exc, retries) from None
        try:
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
        finally:
            await slot_context.__aexit__(None, None, None)
        delay = _stream_retry_delay(state, error, kwargs, retries, what)
        if delay:
            await asyncio.sleep(delay)
