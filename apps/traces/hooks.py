"""Listeners told what each ingest write added, so apps above traces keep their own views of the rows.

Traces imports none of them: an app registers a listener from its AppConfig.ready()
(monitoring keeps its hourly rollups this way). A listener runs inside the
batch's transaction, after the rows are written: if it raises, the batch rolls
back and is retried, so a listener's view never misses nor double-counts a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Written:
    """What one write added: only rows that were not there before (a duplicate span or score is not in it)."""

    project_id: int
    span_keys: list[tuple[str, str]] = field(default_factory=list)  # (trace_id, span_id)
    score_ids: list[str] = field(default_factory=list)
    # The new generation spans' stored values when the writer has them at hand (else None: listeners read
    # them by `span_keys`): trace_id, span_id, prompt_version_id, prompt_label, model, start_time,
    # duration_ms, status, input_tokens, output_tokens, cost, output_text.
    generations: list[dict] | None = None


Listener = Callable[[Written], None]
_listeners: dict[str, Listener] = {}


def register(name: str, listener: Listener) -> None:
    """Add (or replace, by name) a listener called after every ingest write."""
    _listeners[name] = listener


def notify(written: Written) -> None:
    for listener in list(_listeners.values()):
        listener(written)


def listening() -> bool:
    return bool(_listeners)
