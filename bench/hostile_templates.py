"""Benchmark: the hostile templates of apps/prompts/tests/hostile.py, and what an ordinary render costs.

For each hostile template: refused at parse, refused at render, or rendered;
the wall time of `prompt_studio.sandbox.render` (the path the studio and the
client take), and the peak memory of a fresh render worker rendering it (RSS
above the worker's own start). Prints the count, the slowest and the largest.

Then the per-render cost of an ordinary template: a plain one (in-process) and
a non-plain one (a round trip to a render worker), against a bare Jinja2
render of the same template.

Runs standalone: `python bench/hostile_templates.py` (limits: 200 ms, 200,000
characters, 256 MB a worker, the studio's defaults).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "clients" / "python"))

from prompt_studio import sandbox  # noqa: E402

from apps.prompts.tests.hostile import PAYLOADS  # noqa: E402


def _peak_rss_kb(source: str, values: dict) -> int | None:
    """Peak RSS of a fresh worker rendering `source`, above its RSS when idle (None when it was killed)."""
    worker = sandbox._Worker(sandbox.RENDER_MEMORY_MB)
    try:
        idle = worker.render({"sources": [], "values": {}, "timeout": 1.0, "max_chars": 1}, wall_clock=10)
        request = {"sources": [["", source]], "values": values, "timeout": sandbox.RENDER_TIMEOUT_SECONDS,
                   "max_chars": sandbox.RENDER_MAX_CHARS, "shown_timeout": sandbox.RENDER_TIMEOUT_SECONDS}  # fmt: skip
        try:
            reply = worker.render(request, wall_clock=sandbox.RENDER_TIMEOUT_SECONDS * 2 + 0.5)
        except (TimeoutError, EOFError):
            return None
        return reply["peak_rss_kb"] - idle["peak_rss_kb"]
    finally:
        worker.stop()


def hostile() -> None:
    started = time.perf_counter()
    sandbox.render("{{ 2 ** 2 }}", {})  # start the pool's first worker; its start is not a render's cost
    print(f"worker_start_ms: {(time.perf_counter() - started) * 1000:.0f}")
    outcomes = {"refused at parse": 0, "refused at render": 0, "rendered": 0}
    slowest = (0.0, "")
    largest = (0, "")
    for name, source, values in PAYLOADS:
        try:
            sandbox.parse(source)
        except sandbox.TemplateProblem:
            outcomes["refused at parse"] += 1
            continue
        started = time.perf_counter()
        try:
            text = sandbox.render(source, values)
            outcomes["rendered"] += 1
            assert len(text) <= sandbox.RENDER_MAX_CHARS
        except sandbox.TemplateProblem as exc:
            outcomes["refused at render"] += 1
            message = exc.message
        else:
            message = f"{len(text):,} characters"
        elapsed = time.perf_counter() - started
        memory = _peak_rss_kb(source, values)
        print(f"  {name:28} {elapsed * 1000:7.1f} ms  {'killed' if memory is None else f'{memory / 1024:6.1f} MB'}"
              f"  {message[:70]}")  # fmt: skip
        slowest = max(slowest, (elapsed, name))
        largest = max(largest, (memory or 0, name))
    print(f"hostile_templates: {len(PAYLOADS)} ({', '.join(f'{v} {k}' for k, v in outcomes.items())})")
    print(f"hostile_slowest_ms: {slowest[0] * 1000:.0f} ({slowest[1]})")
    print(f"hostile_largest_memory_mb: {largest[0] / 1024:.1f} ({largest[1]}; a worker's limit is "
          f"{sandbox.RENDER_MEMORY_MB} MB)")  # fmt: skip


def ordinary(repeat: int = 2000) -> None:
    values = {"name": "Ada", "tags": ["a", "b", "c"], "n": 3}
    plain = "Hello {{ name }}! {% for t in tags %}#{{ t|upper }} {% endfor %}"
    arithmetic = "Hello {{ name }}! {% for t in tags %}{{ loop.index ** n }}:{{ t|upper }} {% endfor %}"
    bare = __import__("jinja2").Environment().from_string(plain)
    for label, render in (
        ("bare_jinja2", lambda: bare.render(**values)),
        ("plain_in_process", lambda: sandbox.render(plain, values)),
        ("non_plain_worker", lambda: sandbox.render(arithmetic, values)),
    ):
        render()
        started = time.perf_counter()
        for _ in range(repeat):
            render()
        print(f"render_us_{label}: {(time.perf_counter() - started) / repeat * 1e6:.0f}")


if __name__ == "__main__":
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    hostile()
    ordinary()
