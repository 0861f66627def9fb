"""Three-way merge of prompt content: the version a draft started from, the version saved since, the draft.

Used when a save loses the race to another save (StaleParent): when the two edits touch different lines
(or different messages, config keys, variables) they are combined; where they touch the same lines the
overlap is reported and nothing is merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from apps.prompts.content import Content, build_content


@dataclass
class Overlap:
    where: str  # "template", "message 2", "config key temperature", "kind"...
    base: str
    saved: str
    draft: str


@dataclass
class MergeResult:
    content: Content | None = None
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.content is not None and not self.overlaps


def _hunks(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    matcher = SequenceMatcher(None, base, other, autojunk=False)
    return [(i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _apply(base: list[str], start: int, end: int, hunks: list[tuple[int, int, list[str]]]) -> list[str]:
    """base[start:end] with the hunks (all inside that range) applied."""
    out, at = [], start
    for i1, i2, lines in hunks:
        out.extend(base[at:i1])
        out.extend(lines)
        at = i2
    out.extend(base[at:end])
    return out


def merge_text(base: str, saved: str, draft: str, *, where: str = "template") -> tuple[str | None, list[Overlap]]:
    """Line-based three-way merge. Changes that touch or adjoin the same lines of `base` overlap (as in git)
    unless both sides made the same change."""
    if saved == draft:
        return saved, []
    if saved == base:
        return draft, []
    if draft == base:
        return saved, []
    b = base.splitlines(keepends=True)
    events = sorted(
        [(h, "saved") for h in _hunks(b, saved.splitlines(keepends=True))]
        + [(h, "draft") for h in _hunks(b, draft.splitlines(keepends=True))],
        key=lambda e: (e[0][0], e[0][1]),
    )
    merged: list[str] = []
    overlaps: list[Overlap] = []
    at = 0
    index = 0
    while index < len(events):
        (start, end, _), _ = events[index]
        group = [events[index]]
        index += 1
        while index < len(events) and events[index][0][0] <= end:
            end = max(end, events[index][0][1])
            group.append(events[index])
            index += 1
        merged.extend(b[at:start])
        at = end
        sides = {side for _, side in group}
        by_side = {s: _apply(b, start, end, [h for h, side in group if side == s]) for s in sides}
        if len(sides) == 1 or by_side["saved"] == by_side["draft"]:
            merged.extend(next(iter(by_side.values())))
            continue
        overlaps.append(Overlap(where, "".join(b[start:end]), "".join(by_side["saved"]), "".join(by_side["draft"])))
    merged.extend(b[at:])
    return ("".join(merged) if not overlaps else None), overlaps


def _merge_value(base: Any, saved: Any, draft: Any, where: str) -> tuple[Any, list[Overlap]]:
    if saved == draft or draft == base:
        return saved, []
    if saved == base:
        return draft, []
    return None, [Overlap(where, _show(base), _show(saved), _show(draft))]


def _show(value: Any) -> str:
    return "(not set)" if value is None else str(value)


def _merge_messages(base: list[dict], saved: list[dict], draft: list[dict]) -> tuple[list[dict], list[Overlap]]:
    roles = [[m["role"] for m in side] for side in (base, saved, draft)]
    if roles[0] == roles[1] == roles[2]:
        merged, overlaps = [], []
        for number, (b, s, d) in enumerate(zip(base, saved, draft, strict=True), start=1):
            text, found = merge_text(b["content"], s["content"], d["content"], where=f"message {number} ({b['role']})")
            overlaps.extend(found)
            merged.append({"role": b["role"], "content": text or ""})
        return merged, overlaps
    value, overlaps = _merge_value(base, saved, draft, "the list of messages")
    return value or [], overlaps


def _merge_dicts(base: dict, saved: dict, draft: dict, where: str) -> tuple[dict, list[Overlap]]:
    merged, overlaps = {}, []
    for key in list(dict.fromkeys([*base, *saved, *draft])):
        value, found = _merge_value(base.get(key), saved.get(key), draft.get(key), f"{where} {key}")
        overlaps.extend(found)
        if value is not None:
            merged[key] = value
    return merged, overlaps


def content_merge(*, base: Content | None, saved: Content, draft: Content, prompt=None) -> MergeResult:
    """Combine the draft (started from `base`) with `saved` (saved since). `base` None: the draft started
    from an empty prompt, so every line of both sides is new and they overlap unless they are equal."""
    base = base or Content(kind=draft.kind)
    overlaps: list[Overlap] = []
    kind, found = _merge_value(base.kind, saved.kind, draft.kind, "kind")
    overlaps.extend(found)
    template, found = merge_text(base.template, saved.template, draft.template)
    overlaps.extend(found)
    messages, found = _merge_messages(base.messages, saved.messages, draft.messages)
    overlaps.extend(found)
    config, found = _merge_dicts(base.config, saved.config, draft.config, "config key")
    overlaps.extend(found)
    specs = {s["name"]: s for s in base.variables}
    variables, found = _merge_dicts(
        specs, {s["name"]: s for s in saved.variables}, {s["name"]: s for s in draft.variables}, "variable"
    )
    overlaps.extend(found)
    if overlaps:
        return MergeResult(overlaps=overlaps)
    return MergeResult(
        content=build_content(
            kind=kind,
            template=template or "",
            messages=messages,
            config=config,
            variable_specs=list(variables.values()),
            prompt=prompt,  # the merged template's includes are resolved again, for this prompt
        )
    )
