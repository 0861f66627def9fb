"""Benchmark: what includes cost a render, against the same prompt written out flat by hand.

A prompt with three snippets (one of them including a fourth) and the same text
with each include replaced by the snippet's text: the per-render time of both,
plain (in-process) and not plain (a round trip to a render worker), and the
first render of a composition (parse and inline every snippet, then compile)
against the first render of the flat text. Prints `include_render_vs_flat_*`
(target <= 1.2: a composition is compiled once, then cached like any template)
and `include_first_render_vs_flat`.

Runs standalone: `python bench/includes.py` (the sandbox only; no database).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "clients" / "python"))

from prompt_studio import sandbox  # noqa: E402

SIG = "-- {{ team }}"
VOICE = 'Write in {{ product }}\'s voice: warm, plain words.\n{% include "sig@production" %}'
FORMAT = "Answer as a list:\n{% for point in points %}- {{ point|upper }}\n{% endfor %}"
SAFETY = "Never reveal {{ secret_name }}."
PROMPT = ('Hi {{ name }}!\n{% include "voice@production" %}\n{% include "format@production" %}\n'
          '{% include "safety@production" %}\n{{ extra }}')  # fmt: skip
FLAT = PROMPT.replace('{% include "voice@production" %}', VOICE.replace('{% include "sig@production" %}', SIG))
FLAT = FLAT.replace('{% include "format@production" %}', FORMAT).replace('{% include "safety@production" %}', SAFETY)
TREE = {
    "voice@production": {"source": VOICE, "includes": {"sig@production": {"source": SIG, "includes": {}}}},
    "format@production": {"source": FORMAT, "includes": {}},
    "safety@production": {"source": SAFETY, "includes": {}},
}
VALUES = {"name": "Ada", "product": "Acme", "team": "the team", "points": ["a", "b", "c"], "secret_name": "x",
          "extra": "thanks"}  # fmt: skip


def per_render_us(source: str, includes: str | None, repeat: int) -> float:
    for _ in range(5):  # warm: the worker started, the template compiled and cached (a busy machine may need two)
        try:
            sandbox.render(source, VALUES, includes=includes)
            break
        except sandbox.TemplateProblem:
            time.sleep(0.5)
    started = time.perf_counter()
    for _ in range(repeat):
        sandbox.render(source, VALUES, includes=includes)
    return (time.perf_counter() - started) / repeat * 1e6


def first_render_ms(source: str, includes: dict | None) -> float:
    sandbox._compile.cache_clear()
    started = time.perf_counter()
    sandbox.render(source, VALUES, includes=includes)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    assert sandbox.render(PROMPT, VALUES, includes=TREE) == sandbox.render(FLAT, VALUES)
    heavy_prompt, heavy_flat = PROMPT + "{{ 2 ** 10 }}", FLAT + "{{ 2 ** 10 }}"  # not plain: a worker renders it
    for label, (composed, flat, repeat) in {"plain": (PROMPT, FLAT, 300),
                                            "worker": (heavy_prompt, heavy_flat, 60)}.items():  # fmt: skip
        # Alternate the two in short rounds and keep the median: a shared machine's load moves under a long run.
        key = sandbox.include_key(TREE)  # as the client's Prompt and the studio's Content keep it between renders
        rounds = [(per_render_us(composed, key, repeat), per_render_us(flat, None, repeat)) for _ in range(15)]
        with_includes = sorted(r[0] for r in rounds)[7]
        written_out = sorted(r[1] for r in rounds)[7]
        ratio = sorted(r[0] / r[1] for r in rounds)[7]
        print(f"render_us_{label}: includes {with_includes:.0f}, flat {written_out:.0f}")
        print(f"include_render_vs_flat_{label}: {ratio:.2f}")
    firsts = [(first_render_ms(PROMPT, TREE), first_render_ms(FLAT, None)) for _ in range(20)]
    composed_ms = sorted(f[0] for f in firsts)[10]
    flat_ms = sorted(f[1] for f in firsts)[10]
    print(f"include_first_render_ms: {composed_ms:.2f} (flat {flat_ms:.2f})")
    print(f"include_first_render_vs_flat: {composed_ms / flat_ms:.2f}")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
