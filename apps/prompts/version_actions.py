"""Buttons that higher apps add to a version's page (reviews: "Request release"), so prompts imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class VersionAction:
    title: str
    # Reversed with (project slug, prompt name, version number).
    url_name: str
    min_role: str = "editor"
    order: int = 50
    css: str = "btn btn-outline-primary"


_actions: list[VersionAction] = []


def register(action: VersionAction) -> None:
    if action not in _actions:
        _actions.append(action)
        _actions.sort(key=lambda a: a.order)


def for_version(*, membership, version) -> list[dict[str, str]]:
    """The actions the member's role allows, as {title, url, css} for the template."""
    prompt = version.prompt
    return [
        {
            "title": a.title,
            "css": a.css,
            "url": reverse(a.url_name, args=[prompt.project.slug, prompt.name, version.number]),
        }
        for a in _actions
        if membership.has_role(a.min_role)
    ]
