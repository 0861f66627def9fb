"""Spans and batches as apps send them, for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def new_id() -> str:
    return uuid.uuid4().hex


def generation(trace_id: str, *, span_id: str | None = None, prompt: dict | None = None, start=None, **extra):
    start = start or datetime.now(UTC) - timedelta(minutes=5)
    item: dict[str, Any] = {
        "id": span_id or new_id()[:16],
        "trace_id": trace_id,
        "name": "chat",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=800)).isoformat(),
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "Where is my order 42?"}],
        "output": "It ships tomorrow.",
        "usage": {"input_tokens": 12, "output_tokens": 5},
        "cost": 0.00002,
        "variables": {"question": "Where is my order 42?"},
    }
    if prompt:
        item["prompt"] = prompt
    item.update(extra)
    return item


def batch(*traces_spans, scores=()) -> dict[str, Any]:
    return {"generations": list(traces_spans), "scores": list(scores)}
