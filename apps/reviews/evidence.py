"""The Evidence section of a review page, filled by later apps (experiments, ratings).

An app registers a provider in its AppConfig.ready():

    from apps.reviews import evidence
    evidence.register(evidence.EvidenceProvider(title="Experiments", collect=my_function))

`collect(version=..., review=...)` returns a list of `EvidenceItem`. Until a
provider is registered, or when none has anything for the version, the review
page says that no evidence is linked. `passed` is where a later policy rule
(ReleasePolicy.evidence_rules) can read a threshold's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceItem:
    title: str
    summary: str = ""
    url: str = ""
    passed: bool | None = None
    details: dict = field(default_factory=dict, hash=False, compare=False)
    action: bool = False  # an offer to gather evidence (start or link an experiment), not evidence itself


@dataclass(frozen=True)
class EvidenceProvider:
    title: str
    collect: Callable[..., list[EvidenceItem]]
    order: int = 50


_providers: list[EvidenceProvider] = []


def register(provider: EvidenceProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)
        _providers.sort(key=lambda p: p.order)


def unregister(provider: EvidenceProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def providers() -> list[EvidenceProvider]:
    return list(_providers)


def anything_linked(sections: list[tuple[str, list[EvidenceItem]]]) -> bool:
    """Whether any section holds evidence, not only offers to gather it."""
    return any(not item.action for _, items in sections for item in items)


def collect(*, version, review) -> list[tuple[str, list[EvidenceItem]]]:
    """(provider title, items) for each provider with something for this version."""
    sections = []
    for provider in _providers:
        try:
            items = list(provider.collect(version=version, review=review))
        except Exception:
            # One broken provider must not hide the rest of the review page.
            logger.exception("evidence provider %s failed", provider.title)
            items = [EvidenceItem(title=f"{provider.title} could not be loaded", passed=None)]
        if items:
            sections.append((provider.title, items))
    return sections
