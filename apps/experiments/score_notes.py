"""Notes that higher apps put next to an evaluator's scores on an experiment's page (ratings: how well an LLM
judge agrees with people, Cohen's kappa with its interval), so experiments imports none of them."""

from __future__ import annotations

from collections.abc import Callable

# Each provider returns {evaluator name: a short note} for one experiment.
Provider = Callable[..., dict[str, str]]
_providers: list[Provider] = []


def register(provider: Provider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def for_experiment(*, experiment) -> dict[str, list[str]]:
    """Every registered note, by evaluator name."""
    notes: dict[str, list[str]] = {}
    for provider in _providers:
        for name, note in provider(experiment=experiment).items():
            notes.setdefault(name, []).append(note)
    return notes
