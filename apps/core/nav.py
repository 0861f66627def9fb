"""Entries that apps add to a project's navigation bar, so base.html needs no knowledge of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavEntry:
    title: str
    url_name: str
    min_role: str = "viewer"
    order: int = 50


_entries: list[NavEntry] = []


def register(entry: NavEntry) -> None:
    if entry not in _entries:
        _entries.append(entry)
        _entries.sort(key=lambda e: e.order)


def entries() -> list[NavEntry]:
    return list(_entries)
