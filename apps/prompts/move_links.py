"""Links that higher apps add to a row of a prompt's label history (monitoring: the release's impact), so
prompts imports none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse


@dataclass(frozen=True)
class MoveLink:
    title: str
    # Reversed with (project slug, label move id).
    url_name: str
    # (move) -> whether the link applies to this move.
    applies: Callable[[Any], bool] = lambda move: True
    order: int = 50


_links: list[MoveLink] = []


def register(link: MoveLink) -> None:
    if link not in _links:
        _links.append(link)
        _links.sort(key=lambda link: link.order)


def for_moves(*, project_slug: str, moves) -> list[tuple[Any, list[dict[str, str]]]]:
    """Each move with the links that apply to it, as {title, url}."""
    return [
        (
            move,
            [
                {"title": link.title, "url": reverse(link.url_name, args=[project_slug, move.pk])}
                for link in _links
                if link.applies(move)
            ],
        )
        for move in moves
    ]
