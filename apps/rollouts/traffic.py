"""Simulated production traffic for a canary: what an app does, through the Python client, against a model server.

Each call takes a user key, gets the prompt's arm for that key from the client (prompt_studio: it assigns
locally from the split the studio sent), renders it, calls the OpenAI-compatible model server and traces the
call (version, label, error, latency, cost) with the client's tracer, sometimes with feedback. A worse
canary is made with the model server's fault markers: `[[fail:500]]` in the message makes the call fail.
Used by `manage.py canary_traffic` (README, Canary releases) and the end-to-end test.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT = " [[fail:500]]"


@dataclass
class TrafficStats:
    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def line(self) -> str:
        parts = []
        for arm in sorted(self.calls):
            parts.append(f"{arm or 'plain'}: {self.calls[arm]} calls, {self.errors[arm]} errors")
        return "; ".join(parts)


def _value(spec: dict[str, Any], index: int) -> Any:
    kind = spec.get("type") or "string"
    return {"number": index % 97, "integer": index % 97, "boolean": index % 2 == 0, "list": [], "object": {}}.get(
        kind, f"{spec['name']} {index}"
    )


def _call_model(model_url: str, messages: list[dict[str, str]], timeout: float) -> tuple[bool, str, dict]:
    body = json.dumps({"model": "echo", "messages": messages}).encode()
    url = f"{model_url.rstrip('/')}/chat/completions"
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - http only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the local model server
            answer = json.loads(response.read())
        return True, answer["choices"][0]["message"]["content"], answer.get("usage") or {}
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return False, f"{type(exc).__name__}: {exc}", {}


def run(
    *,
    studio,
    model_url: str,
    prompt_name: str,
    label: str = "production",
    calls: int = 1000,
    batch: int = 100,
    canary_errors: float = 0.0,
    errors: float = 0.02,
    feedback: float = 0.0,
    seed: int = 15,
    users: int = 5000,
    after_batch: Callable[[int, TrafficStats], bool] | None = None,
    timeout: float = 5.0,
) -> TrafficStats:
    """Send `calls` simulated calls; after each `batch`, flush the traces and call `after_batch(sent, stats)`,
    which returns False to stop early. `errors`: the share of all calls that carry the fault marker;
    `canary_errors`: the extra share of the canary's calls that do."""
    rng = random.Random(seed)
    stats = TrafficStats()
    for index in range(calls):
        user = f"user-{rng.randrange(users)}"
        prompt = studio.get_prompt(prompt_name, label=label, key=user)
        values = {spec["name"]: _value(spec, index) for spec in prompt.variables}
        try:
            rendered = prompt.render(**values)
        except ValueError:  # RenderError: the bounded sandbox refused (a slow first render on a loaded machine)
            stats.calls["render refused"] += 1
            continue
        messages = rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}]
        messages = [dict(m) for m in messages]
        fault_rate = errors + (canary_errors if prompt.arm == "canary" else 0.0)
        if rng.random() < fault_rate:
            messages[-1]["content"] += FAULT
        with studio.trace("canary-traffic", user_id=user) as trace:
            generation = trace.generation(prompt=prompt, variables=values, input=messages, model="echo")
            started = time.monotonic()
            ok, output, usage = _call_model(model_url, messages, timeout)
            if ok:
                tokens = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
                generation.end(output=output, usage=usage, cost=tokens * 1e-6)
            else:
                generation.end(error=output)
            trace.update(metadata={"arm": prompt.arm, "latency_ms": round((time.monotonic() - started) * 1000, 1)})
        stats.calls[prompt.arm] += 1
        stats.errors[prompt.arm] += 0 if ok else 1
        if ok and feedback and rng.random() < feedback:
            studio.feedback(trace.id, "thumbs", prompt.arm != "canary" or rng.random() < 0.9, end_user_id=user)
        if (index + 1) % batch == 0:
            studio.flush(10)
            if after_batch is not None and after_batch(index + 1, stats) is False:
                break
    studio.flush(10)
    return stats
