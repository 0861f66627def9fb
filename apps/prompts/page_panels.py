"""Panels that higher apps add to a prompt's page (traces: production volume per version), so prompts imports none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptPanel:
    template_name: str
    # (prompt) -> the panel template's context; None hides the panel.
    context: Callable[[Any], dict[str, Any] | None]
    order: int = 50


_panels: list[PromptPanel] = []


def register(panel: PromptPanel) -> None:
    if panel not in _panels:
        _panels.append(panel)
        _panels.sort(key=lambda p: p.order)


def for_prompt(*, prompt) -> list[dict[str, Any]]:
    shown = []
    for panel in _panels:
        context = panel.context(prompt)
        if context is not None:
            shown.append({"template_name": panel.template_name, "context": context})
    return shown
