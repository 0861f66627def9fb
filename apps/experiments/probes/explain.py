"""Which input variable moved one output: occlusion.

The cell's prompt is rendered again with one variable at a time replaced by a neutral value ("" for
text, 0 for a number, an empty list or object) and sent through the gateway to the same endpoint
with the same parameters. How far each answer moved from the recorded one is measured as a text
distance (1 - difflib's similarity ratio) and whether the decision (first line) changed. The same
request without any change is sent once too: its distance is the noise floor of a sampling model,
so a variable matters only where it moves the answer more than that.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from apps.experiments.models import Cell
from apps.experiments.probes.bias import label_of


@dataclass
class Occlusion:
    variable: str  # "" for the unchanged re-run
    neutral: Any
    output: str
    distance: float
    decision_changed: bool
    error: str = ""


def neutral_value(value: Any) -> Any:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return ""


def distance(a: str, b: str) -> float:
    return round(1 - difflib.SequenceMatcher(None, a or "", b or "").ratio(), 3)


def occlusion(cell: Cell) -> list[Occlusion]:
    """The unchanged re-run first, then each variable occluded, most moving first (N+1 model calls)."""
    from apps.experiments.runner import call_params
    from apps.prompts.content import content_of, render_content
    from apps.prompts.sandbox import TemplateProblem
    from apps.providers import gateway

    variant = cell.variant
    content = content_of(variant.prompt_version)
    inputs = dict(cell.item.input or {})
    params = call_params(variant.prompt_version.config, variant.params)
    names = [n for n in variant.prompt_version.variable_names if n in inputs]

    def run(variable: str, values: dict[str, Any]) -> Occlusion:
        neutral = values.get(variable) if variable else None
        try:
            rendered = render_content(content, values)
            completion = gateway.generate(
                variant.endpoint,
                messages=rendered if isinstance(rendered, list) else None,
                prompt=rendered if isinstance(rendered, str) else None,
                params=params,
            )
        except (TemplateProblem, gateway.GatewayError) as exc:
            return Occlusion(variable, neutral, "", 0.0, False, str(exc))
        output = completion.output
        return Occlusion(variable, neutral, output, distance(cell.output, output),
                         label_of(cell.output) != label_of(output))  # fmt: skip

    results = [run(name, {**inputs, name: neutral_value(inputs[name])}) for name in names]
    results.sort(key=lambda r: (r.decision_changed, r.distance), reverse=True)
    return [run("", inputs), *results]
