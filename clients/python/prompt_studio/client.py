"""The Prompt Studio client: a TTL cache with stale-while-revalidate, ETags, retries, and offline fallbacks.

Order of answers for get_prompt():
1. a cached copy younger than `ttl` (no request);
2. a cached copy younger than `max_stale`, returned at once while one background
   thread revalidates it with If-None-Match;
3. a fresh fetch (conditional when a copy exists), with retries and backoff;
4. when the studio cannot be reached: the last good copy, else the snapshot
   file written by save_snapshot(), else the caller's fallback. A warning is
   logged each time something stale is served. It raises only when none exists.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Any

from prompt_studio import assign, sandbox

logger = logging.getLogger("prompt_studio")

DEFAULT_LABEL = "production"


class StudioError(Exception):
    """The studio answered with an error that a retry will not fix (bad key, unknown prompt, bad input)."""

    def __init__(self, status: int, code: str, detail: str):
        self.status, self.code, self.detail = status, code, detail
        super().__init__(f"{status} {code}: {detail}")


class StudioUnavailable(Exception):
    """The studio could not be reached (or failed) after the retries, and no copy of the prompt exists anywhere."""


class RenderError(ValueError):
    """A missing or wrong-typed variable, or a template the sandbox refuses; `variable` names the variable."""

    def __init__(self, message: str, variable: str | None = None):
        self.variable = variable
        super().__init__(message)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    type: str
    template: str | None
    messages: list[dict[str, str]] | None
    config: dict[str, Any]
    variables: list[dict[str, Any]]
    labels: list[str] = field(default_factory=list)
    content_hash: str = ""
    source: str = "studio"  # studio, cache, snapshot or fallback
    label: str = ""  # the label it was fetched by (traces record it), "" when fetched by version
    arm: str = ""  # on a label split for a canary: "stable" or "canary" (the version names it in traces too)
    split: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # {% include "name@label" %} -> "name:version", and the texts of those snippet versions: the document
    # carries every snippet it needs, so a prompt with includes renders offline exactly as the studio renders it.
    includes: dict[str, str] = field(default_factory=dict)
    snippets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_key(self, key: str) -> Prompt:
        """The arm of a canary split that `key` (an end user, a session) sticks to, assigned locally.

        prompt_studio.assign is the studio's own rule, so the studio would answer the same arm; with no
        split this is the prompt itself. Works on a cached copy and on the offline snapshot alike.
        """
        if not self.split or not self.split.get("canary"):
            return self
        chosen = assign.arm(self.name, self.label, key, int(self.split.get("canary_weight") or 0))
        if chosen == assign.CANARY:
            canary = Prompt.from_document(self.split["canary"], source=self.source, label=self.label)
            return replace(canary, arm=assign.CANARY, split=self.split)
        return replace(self, arm=assign.STABLE)

    @functools.cached_property
    def _include_key(self) -> str:
        """The composition of the snippets, built once per copy of the prompt (it is rendered many times)."""
        return sandbox.include_key(sandbox.include_tree(self.includes, self.snippets)) if self.includes else ""

    @classmethod
    def from_document(cls, document: dict[str, Any], source: str = "studio", label: str | None = None) -> Prompt:
        return cls(
            name=document["name"],
            version=document["version"],
            type=document["type"],
            template=document.get("template"),
            messages=document.get("messages"),
            config=document.get("config") or {},
            variables=document.get("variables") or [],
            labels=document.get("labels") or [],
            content_hash=document.get("content_hash", ""),
            source=source,
            label=label or "",
            arm=document.get("arm") or "",
            split=document.get("split"),
            includes=document.get("includes") or {},
            snippets=document.get("snippets") or {},
        )

    def render(self, **variables: Any) -> str | list[dict[str, str]]:
        """The text (text prompt) or the messages (chat prompt), rendered as the studio would."""
        try:
            sandbox.validate_values(self.variables, variables)
            if self.type == "chat":
                return sandbox.render_messages(self.messages or [], variables, includes=self._include_key)
            return sandbox.render(self.template or "", variables, where="template", includes=self._include_key)
        except sandbox.TemplateProblem as exc:
            raise RenderError(str(exc), exc.variable) from None


@dataclass
class _Entry:
    prompt: Prompt
    etag: str
    fetched_at: float  # time.monotonic() of the last answer from the studio (200 or 304)


class _Unreachable(Exception):
    pass


class Studio:
    """A thread-safe client; make one per process and share it.

    ttl: seconds a copy is served without asking the studio.
    max_stale: seconds after which a copy is no longer served while revalidating in the
        background; the next call refetches synchronously (and serves the copy only if that fails).
    timeout: seconds per HTTP attempt; retries: extra attempts after a network error, 5xx or 429.
    snapshot_path: a file written by save_snapshot(), read when the studio is unreachable.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ttl: float = 60.0,
        max_stale: float = 600.0,
        timeout: float = 2.0,
        retries: int = 2,
        backoff: float = 0.2,
        snapshot_path: str | os.PathLike | None = None,
    ):
        if max_stale < ttl:
            raise ValueError("max_stale must be at least ttl")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.ttl, self.max_stale = ttl, max_stale
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.snapshot_path = os.fspath(snapshot_path) if snapshot_path else None
        self._entries: dict[tuple[str, str | None, int | None], _Entry] = {}
        self._lock = threading.Lock()
        self._refreshing: set[tuple[str, str | None, int | None]] = set()
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_mtime: float | None = None
        self.stats = {"requests": 0, "not_modified": 0, "stale_served": 0, "background_refreshes": 0}

    # --- public -------------------------------------------------------------------------------

    def get_prompt(
        self,
        name: str,
        label: str | None = None,
        version: int | None = None,
        *,
        fallback: str | dict[str, Any] | Prompt | None = None,
        key: str | None = None,
    ) -> Prompt:
        """The prompt under `label` (default production) or at `version`; never raises while any copy exists.

        fallback: the caller's last resort: a text template, a document like the API's, or a Prompt.
        key: who asks (end-user or session id): on a label split for a canary, the key's sticky arm,
            assigned here from the split the studio sent (one cached copy serves every key).
        """
        if label is not None and version is not None:
            raise ValueError("ask for a label or a version, not both")
        prompt = self._get_prompt(name, label, version, fallback)
        return prompt.for_key(key) if key is not None else prompt

    def _get_prompt(self, name, label, version, fallback) -> Prompt:
        key = (name, None if version is not None else (label or DEFAULT_LABEL), version)
        with self._lock:
            entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None:
            age = now - entry.fetched_at
            if age < self.ttl:
                return entry.prompt
            if age < self.max_stale:
                self._revalidate_in_background(key)
                return entry.prompt
        try:
            return self._fetch(key, entry)
        except _Unreachable as exc:
            return self._fallback(key, entry, fallback, str(exc))
        except StudioError as exc:
            if entry is not None:
                self._warn_stale(key, f"the studio refused the refresh ({exc})", entry.prompt)
                return entry.prompt
            if fallback is not None:
                self._warn_stale(key, f"the studio refused it ({exc})", None)
                return self._from_fallback(name, fallback)
            raise

    def save_snapshot(self, path: str | os.PathLike | None = None, label: str = DEFAULT_LABEL) -> str:
        """Write every prompt released under `label` to a file (atomically), for use when the studio is down."""
        target = os.fspath(path or self.snapshot_path or "")
        if not target:
            raise ValueError("give a path, or snapshot_path when making the Studio")
        status, body, _ = self._request(f"/api/v1/releases?label={urllib.parse.quote(label)}")
        document = {"saved_at": time.time(), "base_url": self.base_url, **body}
        directory = os.path.dirname(os.path.abspath(target))
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".snapshot-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False, indent=1)
        os.replace(temporary, target)
        if self.snapshot_path is None:
            self.snapshot_path = target
        return target

    # --- tracing (prompt_studio/tracing.py) -------------------------------------------------------

    @property
    def tracer(self):
        """The background exporter of traces and feedback (made on first use; `configure_tracing` to tune it)."""
        if getattr(self, "_tracer", None) is None:
            self.configure_tracing()
        return self._tracer

    def configure_tracing(self, **options: Any):
        """Options of prompt_studio.tracing.Tracer: max_queue, batch_size, flush_interval, enabled, ..."""
        from prompt_studio.tracing import Tracer

        self._tracer = Tracer(self.base_url, self.api_key, **options)
        return self._tracer

    def trace(self, name: str = "trace", **fields: Any):
        """A trace as a context manager or decorator: user_id, session_id, tags, metadata, trace_id."""
        return self.tracer.trace(name, **fields)

    def feedback(self, trace_id: str, name: str, value: float | bool | str, **options: Any) -> str:
        """Send a score on a trace (span_id=, comment=, end_user_id=, score_id=); never raises."""
        return self.tracer.feedback(trace_id, name, value, **options)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send the queued traces now; True when all were handed over within `timeout`."""
        return self.tracer.flush(timeout)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # --- fetching ---------------------------------------------------------------------------------

    def _path(self, key: tuple[str, str | None, int | None]) -> str:
        name, label, version = key
        query = f"version={version}" if version is not None else f"label={urllib.parse.quote(label or '')}"
        return f"/api/v1/prompts/{urllib.parse.quote(name, safe='')}?{query}"

    def _fetch(self, key, entry: _Entry | None) -> Prompt:
        status, body, etag = self._request(self._path(key), etag=entry.etag if entry else None)
        with self._lock:
            if status == 304 and entry is not None:
                self.stats["not_modified"] += 1
                fresh = _Entry(entry.prompt, entry.etag, time.monotonic())
            else:
                fresh = _Entry(Prompt.from_document(body, label=key[1]), etag, time.monotonic())
            self._entries[key] = fresh
        return fresh.prompt

    def _revalidate_in_background(self, key) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            self.stats["background_refreshes"] += 1

        def run() -> None:
            try:
                with self._lock:
                    entry = self._entries.get(key)
                self._fetch(key, entry)
            except (_Unreachable, StudioError) as exc:
                logger.warning("prompt_studio: background refresh of %s failed: %s", _describe(key), exc)
            except Exception:  # a background thread must never die silently
                logger.exception("prompt_studio: background refresh of %s crashed", _describe(key))
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name=f"prompt-studio-refresh-{key[0]}", daemon=True).start()

    def _request(self, path: str, etag: str | None = None) -> tuple[int, Any, str]:
        """GET with retries; (status, JSON body, ETag). Raises _Unreachable or StudioError."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))
            with self._lock:
                self.stats["requests"] += 1
            request = urllib.request.Request(self.base_url + path, headers=headers)  # noqa: S310 - http(s) only
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return response.status, json.loads(response.read()), response.headers.get("ETag", "")
            except urllib.error.HTTPError as exc:
                if exc.code == 304:
                    return 304, None, etag or ""
                if exc.code >= 500 or exc.code == 429:
                    problem = f"HTTP {exc.code}"
                    continue
                raise _studio_error(exc) from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        raise _Unreachable(f"{self.base_url} did not answer after {self.retries + 1} attempts ({problem})")

    # --- fallbacks ------------------------------------------------------------------------------

    def _fallback(self, key, entry: _Entry | None, fallback, reason: str) -> Prompt:
        if entry is not None:
            self._warn_stale(key, reason, entry.prompt)
            return entry.prompt
        from_snapshot = self._from_snapshot(key)
        if from_snapshot is not None:
            self._warn_stale(key, reason, from_snapshot)
            return from_snapshot
        if fallback is not None:
            self._warn_stale(key, reason, None)
            return self._from_fallback(key[0], fallback)
        raise StudioUnavailable(f"{reason}; no cached copy, snapshot or fallback of {_describe(key)}")

    def _warn_stale(self, key, reason: str, prompt: Prompt | None) -> None:
        with self._lock:
            self.stats["stale_served"] += 1
        what = f"{prompt.source} copy v{prompt.version}" if prompt else "the caller's fallback"
        if prompt is not None and prompt.source == "studio":
            what = f"last good copy v{prompt.version}"
        logger.warning("prompt_studio: serving %s of %s: %s", what, _describe(key), reason)

    def _from_snapshot(self, key) -> Prompt | None:
        if not self.snapshot_path:
            return None
        try:
            mtime = os.path.getmtime(self.snapshot_path)
            if self._snapshot is None or mtime != self._snapshot_mtime:
                with open(self.snapshot_path, encoding="utf-8") as handle:
                    self._snapshot, self._snapshot_mtime = json.load(handle), mtime
        except (OSError, ValueError) as exc:
            logger.warning("prompt_studio: cannot read the snapshot %s: %s", self.snapshot_path, exc)
            return None
        name, label, version = key
        document = (self._snapshot.get("prompts") or {}).get(name)
        if document is None:
            return None
        if version is not None and document.get("version") != version:
            return None
        if label is not None and label != self._snapshot.get("label") and label not in document.get("labels", []):
            return None
        return Prompt.from_document(document, source="snapshot", label=label)

    @staticmethod
    def _from_fallback(name: str, fallback: str | dict[str, Any] | Prompt) -> Prompt:
        if isinstance(fallback, Prompt):
            return fallback
        if isinstance(fallback, str):
            return Prompt(name, 0, "text", fallback, None, {}, [], source="fallback")
        return Prompt.from_document({"name": name, "version": 0, **fallback}, source="fallback")


def _describe(key) -> str:
    name, label, version = key
    return f"{name}@{label}" if version is None else f"{name} v{version}"


def _studio_error(exc: urllib.error.HTTPError) -> StudioError:
    try:
        body = json.loads(exc.read())
        return StudioError(exc.code, body.get("code", "error"), body.get("detail", ""))
    except (ValueError, AttributeError):
        return StudioError(exc.code, "error", exc.reason or "")
