"""Links that higher apps add to an experiment's page (ratings: "Compare and rate"), so experiments imports none."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class ExperimentLink:
    title: str
    # Reversed with (project slug, experiment id).
    url_name: str
    min_role: str = "viewer"
    order: int = 50


_links: list[ExperimentLink] = []


def register(link: ExperimentLink) -> None:
    if link not in _links:
        _links.append(link)
        _links.sort(key=lambda a: a.order)


def for_experiment(*, membership, experiment) -> list[dict[str, str]]:
    """The links the member's role allows, as {title, url} for the template."""
    return [
        {"title": link.title, "url": reverse(link.url_name, args=[experiment.project.slug, experiment.pk])}
        for link in _links
        if membership.has_role(link.min_role)
    ]
