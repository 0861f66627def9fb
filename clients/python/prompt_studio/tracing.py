"""Tracing for apps: what a released prompt did in production, sent to the studio in the background.

    studio = Studio("http://127.0.0.1:8000", api_key="ps_...")   # a key with the ingest scope
    prompt = studio.get_prompt("support-reply")                  # carries name, version and label

    with studio.trace("support-chat", user_id="u-17") as trace:
        generation = trace.generation(prompt=prompt, variables=variables, input=messages)
        reply = call_your_model(messages)
        generation.end(output=reply.text, usage=reply.usage, model=reply.model)
    studio.feedback(trace.id, "thumbs", True, end_user_id="u-17")

or as a decorator: `@studio.trace("support-chat")`, with `current_trace()` inside.

Nothing here blocks or raises into the app: records go into a bounded queue
(`put_nowait`); a daemon thread sends them in batches to POST /api/v1/traces,
retries a 429 or a 5xx with backoff, and drops what it cannot send. Drops are
counted in `studio.tracer.stats`. The queue is flushed at exit (atexit, with a
time limit).
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import gzip
import json
import logging
import queue
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger("prompt_studio")

_current_trace: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("prompt_studio_trace", default=None)
_current_span: contextvars.ContextVar[str] = contextvars.ContextVar("prompt_studio_span", default="")
_tracers: weakref.WeakSet[Tracer] = weakref.WeakSet()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()  # noqa: UP017 - the client supports Python 3.10


def current_trace() -> Trace | None:
    """The trace open in this thread or task (inside `with studio.trace(...)` or a decorated function)."""
    return _current_trace.get()


def _usage(usage: Any) -> dict[str, int]:
    """Token counts from a dict or an SDK object, in either naming (input/output or prompt/completion)."""
    if usage is None:
        return {}

    def get(*names: str) -> int | None:
        for name in names:
            value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return None

    found = {
        "input_tokens": get("input_tokens", "prompt_tokens"),
        "output_tokens": get("output_tokens", "completion_tokens"),
    }
    return {k: v for k, v in found.items() if v is not None}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


class Span:
    """An operation inside a trace; `end()` (or leaving the `with` block) records it."""

    kind = "span"

    def __init__(self, trace: Trace, name: str, parent_id: str, **fields: Any):
        self.trace = trace
        self.id = secrets.token_hex(8)
        self.name = name
        self.parent_id = parent_id
        self.start_time = _now()
        self.fields = fields
        self._ended = False
        self._token: contextvars.Token | None = None

    def end(self, *, error: str | BaseException | None = None, **fields: Any) -> None:
        try:
            if self._ended:
                return
            self._ended = True
            self.fields.update({k: v for k, v in fields.items() if v is not None})
            record: dict[str, Any] = {
                "id": self.id,
                "trace_id": self.trace.id,
                "parent_id": self.parent_id or None,
                "type": self.kind,
                "name": self.name[:200],
                "start_time": self.start_time,
                "end_time": _now(),
            }
            if error is not None:
                record["status"] = "error"
                record["status_message"] = str(error)[:500] or type(error).__name__
            record.update(self._payload())
            self.trace.tracer._put("spans", record)
        except Exception:  # tracing never breaks the app
            logger.debug("prompt_studio: could not record span %s", self.name, exc_info=True)

    def _payload(self) -> dict[str, Any]:
        metadata = self.fields.get("metadata")
        return {"metadata": _jsonable(metadata)} if metadata else {}

    def __enter__(self) -> Span:
        self._token = _current_span.set(self.id)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._token is not None:
            _current_span.reset(self._token)
        self.end(error=exc)


class Generation(Span):
    """A model call: the prompt (name, version, label) it rendered, its input, output, tokens and cost."""

    kind = "generation"

    def end(
        self,
        *,
        output: Any = None,
        usage: Any = None,
        model: str | None = None,
        cost: float | None = None,
        error: str | BaseException | None = None,
        **fields: Any,
    ) -> None:
        super().end(error=error, output=output, usage=_usage(usage) or None, model=model, cost=cost, **fields)

    def _payload(self) -> dict[str, Any]:
        f = self.fields
        payload: dict[str, Any] = {}
        prompt = f.get("prompt")
        if prompt is not None:
            payload["prompt"] = {
                "name": getattr(prompt, "name", None),
                "version": getattr(prompt, "version", None) or None,  # 0: a fallback, not a studio version
                "label": f.get("label") or getattr(prompt, "label", None) or None,
            }
            if not f.get("model") and isinstance(getattr(prompt, "config", None), dict):
                f["model"] = prompt.config.get("model")
        for key in ("model", "provider"):
            if f.get(key):
                payload[key] = str(f[key])[:200]
        for key in ("input", "output", "variables", "metadata"):
            if f.get(key) is not None:
                payload[key] = _jsonable(f[key])
        if f.get("usage"):
            payload["usage"] = f["usage"]
        if isinstance(f.get("cost"), int | float) and not isinstance(f.get("cost"), bool):
            payload["cost"] = f["cost"]
        return payload


class Trace:
    """One request of the app. Open spans and generations inside it; it is sent when it ends."""

    def __init__(self, tracer: Tracer, name: str, trace_id: str | None = None, **fields: Any):
        self.tracer = tracer
        self.id = trace_id or uuid.uuid4().hex
        self.name = name
        self.fields = fields
        self.root = Span(self, name, "")
        self._tokens: list[contextvars.Token] = []

    def span(self, name: str, **fields: Any) -> Span:
        return Span(self, name, _current_span.get() or self.root.id, **fields)

    def generation(
        self,
        name: str | None = None,
        *,
        prompt: Any = None,
        label: str | None = None,
        variables: dict[str, Any] | None = None,
        input: Any = None,  # noqa: A002 - the word apps use
        model: str | None = None,
        provider: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Generation:
        """Start a model call; call `.end(output=..., usage=..., model=...)` when it returns."""
        name = name or (getattr(prompt, "name", None) or "generation")
        fields = {"prompt": prompt, "label": label, "variables": variables, "input": input, "model": model,
                  "provider": provider, "metadata": metadata}  # fmt: skip
        return Generation(self, name, _current_span.get() or self.root.id, **fields)

    def update(self, **fields: Any) -> None:
        """Set user_id, session_id, tags, metadata, input or output of the trace."""
        self.fields.update(fields)

    def end(self, error: BaseException | None = None) -> None:
        try:
            record = {"id": self.id, "name": self.name[:200]}
            for key in ("user_id", "session_id", "environment", "tags", "metadata", "input", "output"):
                if self.fields.get(key) is not None:
                    record[key] = _jsonable(self.fields[key])
            self.tracer._put("traces", record)
        except Exception:
            logger.debug("prompt_studio: could not record trace %s", self.name, exc_info=True)
        self.root.end(error=error)

    def __enter__(self) -> Trace:
        self._tokens = [_current_trace.set(self), _current_span.set(self.root.id)]
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for token in reversed(self._tokens):
            try:
                token.var.reset(token)
            except ValueError:  # left in another context: nothing to restore
                pass
        self.end(error=exc)


class TraceScope:
    """What `studio.trace(...)` returns: a context manager (one trace) or a decorator (a trace per call)."""

    def __init__(self, tracer: Tracer, name: str, **fields: Any):
        self.tracer, self.name, self.fields = tracer, name, fields
        self._open: list[Trace] = []

    def __enter__(self) -> Trace:
        trace = Trace(self.tracer, self.name, **self.fields)
        self._open.append(trace)
        return trace.__enter__()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._open.pop().__exit__(exc_type, exc, tb)

    def __call__(self, function):
        name = self.name if self.name != "trace" else getattr(function, "__qualname__", "trace")
        fields = {k: v for k, v in self.fields.items() if k != "trace_id"}

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with Trace(self.tracer, name, **fields):
                return function(*args, **kwargs)

        return wrapper


class Tracer:
    """The background exporter: a bounded queue, batches, retries with backoff, drops counted, flush at exit."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        exit_timeout: float = 2.0,
        enabled: bool = True,
    ):
        self.url = base_url.rstrip("/") + "/api/v1/traces"
        self.api_key = api_key
        self.batch_size, self.flush_interval, self.timeout = batch_size, flush_interval, timeout
        self.max_retries, self.backoff, self.exit_timeout = max_retries, backoff, exit_timeout
        self.enabled = enabled
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.stats = {"queued": 0, "sent": 0, "dropped": 0, "batches": 0, "failed_batches": 0, "retries": 0}
        self.last_error = ""
        _tracers.add(self)

    # --- what apps call -------------------------------------------------------------------------

    def trace(self, name: str = "trace", **fields: Any) -> TraceScope:
        return TraceScope(self, name, **fields)

    def feedback(
        self,
        trace_id: str,
        name: str,
        value: float | bool | str,
        *,
        span_id: str | None = None,
        comment: str | None = None,
        end_user_id: str | None = None,
        score_id: str | None = None,
    ) -> str:
        """Queue a score on a trace (or one of its generations); returns its id (a retry is written once)."""
        score_id = score_id or uuid.uuid4().hex
        record = {"id": score_id, "trace_id": trace_id, "name": name, "value": value}
        for key, item in (("span_id", span_id), ("comment", comment), ("end_user_id", end_user_id)):
            if item is not None:
                record[key] = item
        self._put("scores", record)
        return score_id

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued; True when the queue is empty within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.is_set():
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    def shutdown(self, timeout: float | None = None) -> None:
        self.flush(self.exit_timeout if timeout is None else timeout)
        self._stopped = True
        self._wake.set()

    # --- the queue and the sender -----------------------------------------------------------------

    def _put(self, kind: str, record: dict[str, Any]) -> None:
        if not self.enabled or self._stopped:
            return
        try:
            self._queue.put_nowait((kind, record))
        except queue.Full:
            with self._lock:
                self.stats["dropped"] += 1
            return
        with self._lock:
            self.stats["queued"] += 1
        self._ensure_thread()
        if self._queue.qsize() >= self.batch_size:
            self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="prompt-studio-tracer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while not self._queue.empty():
                self._idle.clear()
                items: list[tuple[str, dict[str, Any]]] = []
                while len(items) < self.batch_size:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self._send(items)
                except Exception as exc:  # the sender thread must survive anything
                    self._drop(len(items), f"{type(exc).__name__}: {exc}")
            self._idle.set()

    def _drop(self, count: int, reason: str) -> None:
        with self._lock:
            self.stats["dropped"] += count
            self.stats["failed_batches"] += 1
            self.last_error = reason[:300]
        logger.warning("prompt_studio: dropped %d trace records: %s", count, reason[:300])

    def _send(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        document: dict[str, list] = {"traces": [], "spans": [], "scores": []}
        for kind, record in items:
            document[kind].append(record)
        body = gzip.compress(json.dumps({k: v for k, v in document.items() if v}, default=str).encode())
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            wait = self.backoff * (2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter
            try:
                with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310 - http(s) only
                    with self._lock:
                        self.stats["sent"] += len(items)
                        self.stats["batches"] += 1
                    return
            except urllib.error.HTTPError as exc:
                if exc.code != 429 and exc.code < 500:
                    detail = exc.read()[:300].decode("utf-8", "replace")
                    self._drop(len(items), f"HTTP {exc.code}: {detail}")
                    return
                retry_after = exc.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 30.0)
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < self.max_retries:
                with self._lock:
                    self.stats["retries"] += 1
                time.sleep(wait)
        self._drop(len(items), f"{self.url} did not take the batch after {self.max_retries + 1} attempts ({problem})")


@atexit.register
def _flush_at_exit() -> None:
    for tracer in list(_tracers):
        try:
            tracer.shutdown()
        except Exception:  # noqa: S110 - the interpreter is exiting; never raise from here
            pass
