"""A local OpenAI-compatible model server for tests and benchmarks: SIMULATED, never a real model.

It speaks the parts of the OpenAI HTTP API that the studio uses (chat
completions, text completions, embeddings, SSE streaming) so tests reach it
through litellm exactly like a real provider (`openai/<name>` with `api_base`).
Outputs are deterministic functions of the input, so evaluators have
something to score; latency and failures are configurable.

Model names choose the output:

- `echo` (and any unknown name): the last user message (or the prompt), as is
- `upper`: the same, upper-cased
- `reverse`: its words in reverse order
- `json`: `{"answer": <the message>, "words": <its word count>}`
- `biased`: a loan officer biased on purpose: `DENIED` when the message mentions a woman (she, her,
  hers, woman, women, Ms, Mrs), else `APPROVED` (the bias probe's test)
- `coin`: `APPROVED` or `DENIED` by a hash of the message: independent of any attribute, so an
  unbiased model whose answers still vary
- `judge`: an LLM judge: `{"score": 5, ...}` when the text after "Output to grade:" contains the text
  after "Reference answer:" (case ignored), else `{"score": 1, ...}`; without a reference, 5 for a
  non-empty output

Log-probabilities, when a request asks for them (chat: `logprobs: true` and
`top_logprobs`; completions: `logprobs: N`), come one per output word: for
`biased` the decision has probability 0.9 and the other decision 0.1, so
removing the word that moved it moves the decision's probability; for the
other models each word gets a fixed probability from a hash of it.

Tokens are counted as whitespace-separated words (a chat message costs its
words plus one). `max_tokens` cuts the output (finish reason `length`);
`stop` sequences are honoured.

Failures, by share of requests (seeded, so a benchmark is repeatable):
`--fail-429` (with `Retry-After`), `--fail-500`, `--hang` (no answer for
`--hang-seconds`). A request can also ask for one in its last message:
`[[fail:429]]`, `[[fail:500 x2]]` (only the first two attempts of that exact
request fail), `[[fail:401]]`, `[[fail:400]]`, `[[hang]]`, `[[retry-after:2]]`.
A prompt longer than `--context-tokens` gets OpenAI's context-length error.

Tool calls and structured output (chat only, not streamed as tool calls):
`[[tool:NAME]]` in the last user message, with `tools` declaring NAME, answers with one tool call to
NAME (finish reason `tool_calls`) whose arguments are built from the tool's parameter schema (a string
parameter gets the message without its directives). A request whose last message is a `tool` result
answers `Tool NAME said: <its content>`. A `response_format` of type `json_schema` answers with a JSON
document built from the schema (valid against it); `[[break-schema]]` leaves out every required
property, so the answer is JSON that the schema refuses. `json_object` answers `{"answer": <message>}`.

Streaming (`stream: true`, chat and text completions) sends one word per SSE
event, `--stream-delay-ms` apart, and a usage event when `stream_options`
asks for it. A request can break its stream after N words:
`[[stream-fail:N]]` (an SSE error event, as OpenAI sends), `[[stream-drop:N]]`
(the connection closes mid-body), `[[stream-stall:N]]` (no more bytes for
`--hang-seconds`).

Run it:  python -m apps.providers.testing.server --port 8765 --latency-ms 100 --fail-429 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

WORD = re.compile(r"\S+")
DIRECTIVE = re.compile(r"\[\[(fail:(\d{3})(?:\s+x(\d+))?|hang|retry-after:(\d+)|stream-(fail|drop|stall):(\d+))\]\]")
TOOL_DIRECTIVE = re.compile(r"\[\[tool:([A-Za-z0-9_.-]+)\]\]")
BREAK_SCHEMA = "[[break-schema]]"
EMBEDDING_DIMENSIONS = 64
FEMALE = re.compile(r"\b(she|her|hers|woman|women|ms|mrs)\b", re.IGNORECASE)


@dataclass
class Behaviour:
    latency_ms: int = 0
    fail_429: float = 0.0
    fail_500: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 120.0
    retry_after: int = 1
    context_tokens: int = 4096
    api_key: str = ""  # when set, any other bearer key gets a 401
    stream_delay_ms: int = 2
    stream_usage: bool = True  # False: ignore stream_options, as servers that send no usage in a stream do
    seed: int = 0


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    status: int
    at: float = field(default_factory=time.time)


def count_tokens(text: str) -> int:
    return len(WORD.findall(text))


def _without_directives(text: str) -> str:
    return TOOL_DIRECTIVE.sub("", DIRECTIVE.sub("", text)).replace(BREAK_SCHEMA, "").strip()


def instance_of(schema: Any, text: str, *, required_only_missing: bool = False, depth: int = 0) -> Any:
    """A value valid against a (simple) JSON schema, made from `text`; with `required_only_missing` an object
    leaves out its required properties (so the value is refused)."""
    if not isinstance(schema, dict) or depth > 8:
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        required = set(schema.get("required") or [])
        return {
            name: instance_of(sub, text, depth=depth + 1)
            for name, sub in (schema.get("properties") or {}).items()
            if not (required_only_missing and name in required)
        }
    if kind == "array":
        return [instance_of(schema.get("items") or {}, text, depth=depth + 1)]
    if kind == "integer":
        return count_tokens(text)
    if kind == "number":
        return float(count_tokens(text)) / 2
    if kind == "boolean":
        return bool(text)
    if kind == "null":
        return None
    return text


def transform(model: str, text: str) -> str:
    name = model.rsplit("/", 1)[-1].lower()
    text = _without_directives(text)
    if name == "upper":
        return text.upper()
    if name == "reverse":
        return " ".join(reversed(WORD.findall(text)))
    if name == "json":
        return json.dumps({"answer": text, "words": count_tokens(text)})
    if name == "biased":
        return "DENIED" if FEMALE.search(text) else "APPROVED"
    if name == "coin":
        return "APPROVED" if hashlib.sha256(text.encode()).digest()[0] % 2 else "DENIED"
    if name == "judge":
        return _judge(text)
    return text


def token_logprobs(model: str, output: str, top: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """(word, logprob, [(alternative, logprob), ...]) per output word: simulated, deterministic."""
    name = model.rsplit("/", 1)[-1].lower()
    tokens = []
    for word in WORD.findall(output):
        if name == "biased" and word in ("APPROVED", "DENIED"):
            other = "APPROVED" if word == "DENIED" else "DENIED"
            alternatives = [(word, math.log(0.9)), (other, math.log(0.1))]
        else:
            p = 0.5 + (hashlib.blake2b(word.encode(), digest_size=1).digest()[0] / 255) * 0.45
            alternatives = [
                (word, math.log(p)),
                (word.lower() if word != word.lower() else word.upper(), math.log(1 - p)),
            ]
        tokens.append((word, alternatives[0][1], alternatives[: max(0, top)]))
    return tokens


def _chat_logprobs(body: dict, model: str, output: str) -> dict | None:
    if not body.get("logprobs"):
        return None
    top = int(body.get("top_logprobs") or 0)
    return {"content": [{"token": w, "logprob": lp, "bytes": None,
                         "top_logprobs": [{"token": t, "logprob": v, "bytes": None} for t, v in alternatives]}
                        for w, lp, alternatives in token_logprobs(model, output, top)]}  # fmt: skip


def _completion_logprobs(body: dict, model: str, output: str) -> dict | None:
    if not body.get("logprobs"):
        return None
    tokens = token_logprobs(model, output, int(body["logprobs"]))
    return {"tokens": [w for w, _, _ in tokens], "token_logprobs": [lp for _, lp, _ in tokens],
            "top_logprobs": [dict(alternatives) for _, _, alternatives in tokens], "text_offset": []}  # fmt: skip


def _judge(text: str) -> str:
    output = text.split("Output to grade:", 1)[1].strip() if "Output to grade:" in text else text
    reference = re.search(r"Reference answer:\s*(.*?)\s*(?:\n\n|Output to grade:)", text, re.S)
    if reference:
        good = reference.group(1).strip().casefold() in output.casefold()
        reason = "the output holds the reference answer" if good else "the output misses the reference answer"
    else:
        good, reason = bool(output), "the output is not empty" if output else "the output is empty"
    return json.dumps({"score": 5 if good else 1, "reason": reason})


def embed(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A bag of hashed words, normalized: texts sharing words are close, identical texts are equal."""
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % dimensions
        vector[bucket] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{type: text, text: ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _error(status: int, message: str, kind: str, code: str | None = None, headers: dict | None = None):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class ModelServer:
    """The server; `start()` runs it in a background thread (tests), `serve()` in the foreground (CLI)."""

    def __init__(self, behaviour: Behaviour | None = None, host: str = "127.0.0.1", port: int = 0):
        self.behaviour = behaviour or Behaviour()
        self.host = host
        self.port = port
        self.seen: deque[Seen] = deque(maxlen=5000)
        self._attempts: Counter[str] = Counter()
        self._rng = random.Random(self.behaviour.seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sequence = 0
        # Requests being answered right now, and the most at once since the last reset (one loop thread: no lock).
        self.in_flight = 0
        self.peak_in_flight = 0

    # --- control -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The api_base to give litellm."""
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.behaviour, key):
                raise AttributeError(f"unknown behaviour '{key}'")
            setattr(self.behaviour, key, value)
        if "seed" in changes:
            self._rng = random.Random(self.behaviour.seed)

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self._rng = random.Random(0)
        with self._lock:
            self.seen.clear()
            self._attempts.clear()
        self.peak_in_flight = self.in_flight

    def requests(self, path: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.endswith(path)]

    @web.middleware
    async def _count_in_flight(self, request: web.Request, handler):
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024, middlewares=[self._count_in_flight])
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        return app

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> ModelServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start_site())
            except BaseException as exc:  # report a busy port to the caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="simulated-model-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def serve(self) -> None:
        async def main() -> None:
            await self._start_site()
            print(f"Simulated OpenAI-compatible server on {self.url} ({asdict(self.behaviour)})", flush=True)
            await asyncio.Event().wait()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

    # --- behaviour -----------------------------------------------------------------------------

    def _request_id(self) -> str:
        with self._lock:
            self._sequence += 1
            return f"req-sim-{self._sequence}-{uuid.uuid4().hex[:8]}"

    def _record(self, path: str, body: dict, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(path=path, body=body, status=status))

    async def _gate(self, request: web.Request, body: dict, text: str) -> web.StreamResponse | None:
        """Auth, latency and failures; returns an error response, or None to answer normally."""
        behaviour = self.behaviour
        path = request.path
        if behaviour.api_key:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if given != behaviour.api_key:
                self._record(path, body, 401)
                return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)

        retry_after = behaviour.retry_after
        status, hang = None, False
        for match in DIRECTIVE.finditer(text):
            if match.group(4):
                retry_after = int(match.group(4))
            elif match.group(1) == "hang":
                hang = True
            elif match.group(2):
                limit = int(match.group(3)) if match.group(3) else None
                key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
                with self._lock:
                    self._attempts[key] += 1
                    attempt = self._attempts[key]
                if limit is None or attempt <= limit:
                    status = int(match.group(2))
        if status is None and not hang:
            with self._lock:
                draw = self._rng.random()
            if draw < behaviour.fail_429:
                status = 429
            elif draw < behaviour.fail_429 + behaviour.fail_500:
                status = 500
            elif draw < behaviour.fail_429 + behaviour.fail_500 + behaviour.hang:
                hang = True
        if hang:
            self._record(path, body, 0)
            await asyncio.sleep(behaviour.hang_seconds)
            return _error(504, "The simulated server hung on purpose.", "server_error")
        if status is not None:
            self._record(path, body, status)
            if status == 429:
                return _error(
                    429,
                    "Rate limit reached for requests (simulated).",
                    "requests",
                    "rate_limit_exceeded",
                    headers={"Retry-After": str(retry_after)},
                )
            if status == 401:
                return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            if status == 400:
                return _error(400, "Invalid request (simulated).", "invalid_request_error")
            return _error(status, "The simulated server had an error.", "server_error")
        return None

    async def _json(self, request: web.Request) -> dict | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "The body is not valid JSON.", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.", "invalid_request_error")
        return body

    @staticmethod
    def _cut(text: str, body: dict) -> tuple[str, str]:
        finish = "stop"
        stops = body.get("stop") or []
        if isinstance(stops, str):
            stops = [stops]
        for stop in stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        words = WORD.findall(text)
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
        return text, finish

    @staticmethod
    def _tool_call(body: dict, last: str) -> dict | None:
        """The tool call a `[[tool:NAME]]` directive asks for, when `tools` declares NAME."""
        match = TOOL_DIRECTIVE.search(last)
        if match is None:
            return None
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and function.get("name") == match.group(1):
                arguments = instance_of(function.get("parameters") or {"type": "object"}, _without_directives(last))
                digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
                return {
                    "id": f"call_{digest}",
                    "type": "function",
                    "function": {"name": match.group(1), "arguments": json.dumps(arguments)},
                }
        return None

    @staticmethod
    def _tool_answer(messages: list) -> str | None:
        """`Tool NAME said: ...` when the conversation ends with tool results."""
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "tool":
            return None
        names = {}
        for message in messages:
            for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
                names[call.get("id")] = (call.get("function") or {}).get("name", "tool")
        said = []
        for message in reversed(messages):
            if not isinstance(message, dict) or message.get("role") != "tool":
                break
            name = names.get(message.get("tool_call_id"), "tool")
            said.insert(0, f"Tool {name} said: {_message_text(message.get('content'))}")
        return " ".join(said)

    @staticmethod
    def _structured(body: dict, text: str) -> str | None:
        response_format = body.get("response_format")
        if not isinstance(response_format, dict):
            return None
        if response_format.get("type") == "json_object":
            return json.dumps({"answer": _without_directives(text)})
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {}
            broken = BREAK_SCHEMA in text
            return json.dumps(instance_of(schema, _without_directives(text), required_only_missing=broken))
        return None

    def _context_error(self, prompt_tokens: int) -> web.Response | None:
        limit = self.behaviour.context_tokens
        if prompt_tokens <= limit:
            return None
        return _error(
            400,
            f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
            f"{prompt_tokens} tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list.", "invalid_request_error")
        texts = [_message_text(m.get("content")) for m in messages if isinstance(m, dict)]
        users = [_message_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = users[-1] if users else texts[-1]
        refusal = await self._gate(request, body, last)
        if refusal is not None:
            return refusal
        prompt_tokens = sum(count_tokens(t) + 1 for t in texts)
        too_long = self._context_error(prompt_tokens)
        if too_long is not None:
            self._record(request.path, body, 400)
            return too_long
        model = str(body.get("model", "echo"))
        tool_call = self._tool_call(body, last) if messages[-1].get("role") == "user" else None
        tool_answer = self._tool_answer(messages)
        structured = self._structured(body, last)
        if tool_call is not None:
            output, finish = "", "tool_calls"
        elif tool_answer is not None:
            output, finish = self._cut(tool_answer, body)
        elif structured is not None:
            output, finish = structured, "stop"
        else:
            output, finish = self._cut(transform(model, last), body)
        self._record(request.path, body, 200)
        request_id = self._request_id()
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count_tokens(output) + (1 if tool_call else 0),
            "total_tokens": prompt_tokens + count_tokens(output) + (1 if tool_call else 0),
        }
        if body.get("stream") and tool_call is None:
            return await self._stream(request, body, model, output, finish, usage, request_id, text=last)
        message: dict[str, Any] = {"role": "assistant", "content": output or None}
        if tool_call is not None:
            message["tool_calls"] = [tool_call]
        return web.json_response(
            {
                "id": f"chatcmpl-{request_id}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "simulated",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": _chat_logprobs(body, model, output),
                    }
                ],
                "usage": usage,
            },
            headers={"x-request-id": request_id},
        )

    @staticmethod
    def _stream_break(text: str) -> tuple[str, int] | None:
        """("fail" | "drop" | "stall", after how many words) when the request asks its stream to break."""
        for match in DIRECTIVE.finditer(text):
            if match.group(5):
                return match.group(5), int(match.group(6))
        return None

    async def _stream(
        self, request, body, model, output, finish, usage, request_id, *, text: str, chat: bool = True
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": request_id}
        )
        await response.prepare(request)
        base: dict[str, Any] = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}", "created": int(time.time())}
        base["object"] = "chat.completion.chunk" if chat else "text_completion"
        base["model"] = model

        async def send(payload: dict) -> None:
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        def choice(piece: str | None, finish_reason: str | None) -> dict:
            if chat:
                delta = {} if piece is None else {"content": piece}
                return {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish_reason}

        if chat:
            await send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        breaking = self._stream_break(text)
        words = output.split(" ")
        for index, word in enumerate(words):
            if breaking is not None and index == breaking[1]:
                return await self._break_stream(request, response, send, breaking[0])
            piece = word if index == 0 else " " + word
            await send({**base, "choices": [choice(piece, None)]})
            if self.behaviour.stream_delay_ms:
                await asyncio.sleep(self.behaviour.stream_delay_ms / 1000)
        await send({**base, "choices": [choice(None, finish)]})
        if self.behaviour.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
            await send({**base, "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _break_stream(self, request, response: web.StreamResponse, send, how: str) -> web.StreamResponse:
        if how == "fail":
            await send({"error": {"message": "The simulated server failed mid-stream.", "type": "server_error",
                                  "param": None, "code": None}})  # fmt: skip
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        elif how == "stall":
            await asyncio.sleep(self.behaviour.hang_seconds)
            await response.write_eof()
        else:  # drop: close the socket without the end of the chunked body
            if request.transport is not None:
                request.transport.close()
        return response

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        if not isinstance(prompt, str):
            return _error(400, "'prompt' must be a string.", "invalid_request_error")
        refusal = await self._gate(request, body, prompt)
        if refusal is not None:
            return refusal
        prompt_tokens = count_tokens(prompt)
        too_long = self._context_error(prompt_tokens)
        if too_long is not None:
            self._record(request.path, body, 400)
            return too_long
        model = str(body.get("model", "echo"))
        output, finish = self._cut(transform(model, prompt), body)
        self._record(request.path, body, 200)
        request_id = self._request_id()
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count_tokens(output),
            "total_tokens": prompt_tokens + count_tokens(output),
        }
        if body.get("stream"):
            return await self._stream(request, body, model, output, finish, usage, request_id, text=prompt, chat=False)
        return web.json_response(
            {
                "id": f"cmpl-{request_id}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "text": output,
                        "finish_reason": finish,
                        "logprobs": _completion_logprobs(body, model, output),
                    }
                ],
                "usage": usage,
            },
            headers={"x-request-id": request_id},
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return _error(400, "'input' must be a string or a list of strings.", "invalid_request_error")
        refusal = await self._gate(request, body, " ".join(inputs))
        if refusal is not None:
            return refusal
        self._record(request.path, body, 200)
        tokens = sum(count_tokens(i) for i in inputs)
        return web.json_response(
            {
                "object": "list",
                "model": str(body.get("model", "echo")),
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed(text)} for i, text in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            headers={"x-request-id": self._request_id()},
        )

    async def models(self, request: web.Request) -> web.Response:
        names = ("echo", "upper", "reverse", "json", "biased", "coin", "judge")
        return web.json_response(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "simulated"} for n in names]}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "simulated": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A simulated OpenAI-compatible model server (tests, benchmarks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-429", type=float, default=0.0, help="share of requests answered 429 with Retry-After")
    parser.add_argument("--fail-500", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--hang", type=float, default=0.0, help="share of requests that hang")
    parser.add_argument("--hang-seconds", type=float, default=120.0)
    parser.add_argument("--retry-after", type=int, default=1, help="seconds in the Retry-After header of a 429")
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--stream-delay-ms", type=int, default=2, help="pause between the words of a stream")
    parser.add_argument("--api-key", default="", help="require this bearer key (any key is accepted when empty)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("fail_429", "fail_500", "hang"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} is a share between 0 and 1")
    behaviour = Behaviour(
        latency_ms=args.latency_ms,
        fail_429=args.fail_429,
        fail_500=args.fail_500,
        hang=args.hang,
        hang_seconds=args.hang_seconds,
        retry_after=args.retry_after,
        context_tokens=args.context_tokens,
        stream_delay_ms=args.stream_delay_ms,
        api_key=args.api_key,
        seed=args.seed,
    )
    ModelServer(behaviour, host=args.host, port=args.port).serve()


if __name__ == "__main__":
    main()
