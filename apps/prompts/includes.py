"""Composition: a prompt includes another prompt's released text with `{% include "name@label" %}`.

At save the label is resolved, in the prompt's own project only, and the version it points at is pinned
(`IncludePin`, part of the version's content hash): a saved version renders with those snippet versions for
ever, whatever the snippet's labels do later. A snippet keeps its own pins inside the prompt too.

The pins and the texts they pin travel as a flat table, `{key: {name, version, template, includes}}` with
keys like "tone:3", which the REST documents carry as they are; `prompt_studio.sandbox.include_tree` turns
pins and table into what the sandbox renders, on the server and in the client alike.

Moving a snippet's label changes no dependent by itself: `dependents` lists them (the snippet's page, the
review of its release) and `services.dependents_repin` saves their re-pinned versions for review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Max

from apps.accounts.models import Project
from apps.prompts import sandbox
from apps.prompts.models import IncludePin, Label, Prompt, PromptKind, PromptVersion


def key_of(version: PromptVersion) -> str:
    """How the table names a pinned version: "name:number" (unique in a project; versions never change)."""
    return f"{version.prompt.name}:{version.number}"


def _split_ref(ref: str) -> tuple[str, str]:
    name, label = sandbox.INCLUDE_REF.match(ref).groups()
    return name, label


def table_of(versions: list[PromptVersion]) -> dict[str, dict[str, Any]]:
    """The table entries of these snippet versions and of everything they pin, level by level."""
    table: dict[str, dict[str, Any]] = {}
    frontier = {version.pk: version for version in versions}
    for _ in range(sandbox.MAX_INCLUDE_DEPTH + 1):
        if not frontier:
            break
        pins: dict[int, dict[str, str]] = {}
        following: dict[int, PromptVersion] = {}
        for pin in IncludePin.objects.filter(version_id__in=list(frontier)).select_related("snippet_version__prompt"):
            pins.setdefault(pin.version_id, {})[pin.ref] = key_of(pin.snippet_version)
            following[pin.snippet_version_id] = pin.snippet_version
        for version_id, version in frontier.items():
            table[key_of(version)] = {
                "name": version.prompt.name,
                "version": version.number,
                "template": version.template,
                "includes": dict(sorted(pins.get(version_id, {}).items())),
            }
        frontier = {pk: v for pk, v in following.items() if key_of(v) not in table}
    return dict(sorted(table.items()))


def pins_of(version: PromptVersion) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """A saved version's pins ({ref: key}) and the table of every snippet version they reach."""
    rows = list(version.include_pins.select_related("snippet_version__prompt"))
    if not rows:
        return {}, {}
    pins = {row.ref: key_of(row.snippet_version) for row in rows}
    return dict(sorted(pins.items())), table_of([row.snippet_version for row in rows])


def compositions(versions: list[PromptVersion]) -> dict[int, tuple[dict[str, str], dict[str, dict[str, Any]]]]:
    """pins_of for many versions in a few reads (the releases bundle): {version id: (pins, table)}."""
    pins: dict[int, dict[str, str]] = {}
    reached: dict[int, PromptVersion] = {}
    for pin in IncludePin.objects.filter(version__in=versions).select_related("snippet_version__prompt"):
        pins.setdefault(pin.version_id, {})[pin.ref] = key_of(pin.snippet_version)
        reached[pin.snippet_version_id] = pin.snippet_version
    table = table_of(list(reached.values())) if reached else {}
    found = {}
    for version in versions:
        own = dict(sorted(pins.get(version.pk, {}).items()))
        found[version.pk] = (own, _closure(own, table))
    return found


def _closure(pins: dict[str, str], table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The entries of `table` that `pins` reach."""
    kept: dict[str, dict[str, Any]] = {}
    waiting = list(pins.values())
    while waiting:
        key = waiting.pop()
        if key in kept or key not in table:
            continue
        kept[key] = table[key]
        waiting.extend(table[key]["includes"].values())
    return dict(sorted(kept.items()))


def _cycle(name: str, ref: str, pins: dict[str, str], table: dict[str, dict[str, Any]]) -> list[str] | None:
    """The chain of prompt names from the prompt being saved back to itself through `ref`, if there is one."""

    def walk(key: str, path: list[str]) -> list[str] | None:
        entry = table.get(key) or {}
        here = [*path, entry.get("name", key.rsplit(":", 1)[0])]
        if here[-1] == name:
            return here
        if len(here) > sandbox.MAX_INCLUDE_DEPTH + 1:
            return None
        for inner in (entry.get("includes") or {}).values():
            found = walk(inner, here)
            if found:
                return found
        return None

    return walk(pins[ref], [name])


def check_no_cycle(*, name: str, sources: list[tuple[str, str]], pins: dict[str, str], table: dict) -> None:
    """Refuse, with the line of the include, a prompt that would include itself through its snippets."""
    for where, source in sources:
        for ref, line in sandbox.include_refs(source, where=where):
            chain = _cycle(name, ref, pins, table) if ref in pins else None
            if chain:
                raise sandbox.TemplateProblem(
                    f"including '{ref}' makes a cycle ({' → '.join(chain)}): a prompt cannot include itself",
                    line=line,
                    where=where,
                )


def resolve(
    *,
    project: Project,
    sources: list[tuple[str, str]],
    saving: Prompt | None = None,
    keep: dict[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Pins and table for templates about to be saved: each `name@label` resolved now, in `project` only.

    keep: pins ({ref: key}) to hold as they are instead of resolving them again (a re-pin moves only one).
    A missing prompt or label, a chat prompt, a cycle through `saving`, or snippets beyond the sandbox's
    bounds are a TemplateProblem with the line of the include.
    """
    pins: dict[str, str] = {}
    pinned: list[PromptVersion] = []
    for where, source in sources:
        for ref, line in sandbox.include_refs(source, where=where):
            if ref in pins:
                continue
            name, label = _split_ref(ref)
            prompt = Prompt.objects.filter(project=project, name=name).first()
            if prompt is None:
                raise sandbox.TemplateProblem(
                    f"the snippet '{ref}': no prompt called '{name}' in this project", line=line, where=where
                )
            if saving is not None and prompt.pk == saving.pk:
                raise sandbox.TemplateProblem(
                    f"'{ref}' is this prompt: a prompt cannot include itself", line=line, where=where
                )
            version = _kept(prompt, (keep or {}).get(ref)) or labelled_version(prompt, label)
            if version is None:
                raise sandbox.TemplateProblem(
                    f"the snippet '{ref}': {name} has no label '{label}'", line=line, where=where
                )
            if version.kind != PromptKind.TEXT:
                raise sandbox.TemplateProblem(
                    f"the snippet '{ref}' is a chat prompt; only a text prompt can be included", line=line, where=where
                )
            pins[ref] = key_of(version)
            pinned.append(version)
    if not pins:
        return {}, {}
    table = table_of(pinned)
    if saving is not None:
        check_no_cycle(name=saving.name, sources=sources, pins=pins, table=table)
    return dict(sorted(pins.items())), table


def labelled_version(prompt: Prompt, label: str) -> PromptVersion | None:
    if label == "latest":
        return PromptVersion.objects.filter(prompt=prompt).order_by("-number").select_related("prompt").first()
    found = Label.objects.filter(prompt=prompt, name=label).select_related("version__prompt").first()
    return found.version if found else None


def _kept(prompt: Prompt, key: str | None) -> PromptVersion | None:
    if not key:
        return None
    name, _, number = key.rpartition(":")
    if name != prompt.name or not number.isdigit():
        return None
    return PromptVersion.objects.filter(prompt=prompt, number=int(number)).select_related("prompt").first()


def pinned_versions(*, project: Project, pins: dict[str, str]) -> dict[str, PromptVersion]:
    """The versions pins name, looked up in `project` only: a pin can never reach another project's prompt."""
    found: dict[str, PromptVersion] = {}
    for ref, key in pins.items():
        name, _, number = key.rpartition(":")
        version = (
            PromptVersion.objects.filter(prompt__project=project, prompt__name=name, number=int(number or 0))
            .select_related("prompt")
            .first()
            if number.isdigit()
            else None
        )
        if version is None:
            raise sandbox.TemplateProblem(f"the snippet '{ref}' ({key}) does not exist in this project")
        found[ref] = version
    return found


def snippet_variables(*, project: Project, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The variable specs (type, description, sample) the snippet versions named by `keys` declare."""
    wanted: dict[str, set[int]] = {}
    for key in keys:
        name, _, number = key.rpartition(":")
        if number.isdigit():
            wanted.setdefault(name, set()).add(int(number))
    found: dict[str, dict[str, Any]] = {}
    rows = PromptVersion.objects.filter(prompt__project=project, prompt__name__in=list(wanted)).values_list(
        "prompt__name", "number", "variables"
    )
    for name, number, variables in sorted(rows):
        if number in wanted.get(name, ()):
            for spec in variables or []:
                found.setdefault(spec["name"], spec)
    return found


# --- impact analysis ---------------------------------------------------------------------------------------------


@dataclass
class Dependent:
    """A version of another prompt that includes the snippet: its prompt's newest version, or one with labels."""

    prompt: Prompt
    version: PromptVersion
    labels: list[str]
    newest: bool
    ref: str
    label_name: str  # the snippet's label the include names
    pinned: PromptVersion  # the snippet version it renders with
    current: PromptVersion | None  # where that label of the snippet points now

    @property
    def stale(self) -> bool:
        return self.current is not None and self.current.pk != self.pinned.pk


def dependents(*, snippet: Prompt, label_name: str | None = None) -> list[Dependent]:
    """Every prompt whose newest version, or a version carrying a label, includes the snippet.

    label_name: only includes that name this label of the snippet (`tone@production` for production).
    """
    pins = IncludePin.objects.filter(snippet_version__prompt=snippet).select_related(
        "version__prompt", "snippet_version__prompt"
    )
    if label_name is not None:
        pins = pins.filter(label_name=label_name)
    rows = list(pins)
    if not rows:
        return []
    prompt_ids = {row.version.prompt_id for row in rows}
    labels: dict[int, list[str]] = {}
    for version_id, name in (
        Label.objects.filter(prompt_id__in=prompt_ids).order_by("name").values_list("version_id", "name")
    ):
        labels.setdefault(version_id, []).append(name)
    newest = dict(
        PromptVersion.objects.filter(prompt_id__in=prompt_ids)
        .values("prompt_id")
        .annotate(top=Max("number"))
        .values_list("prompt_id", "top")
    )
    current: dict[str, PromptVersion | None] = {}
    found = []
    for row in rows:
        version = row.version
        is_newest = newest.get(version.prompt_id) == version.number
        if not is_newest and not labels.get(version.pk):
            continue
        if row.label_name not in current:
            current[row.label_name] = labelled_version(snippet, row.label_name)
        found.append(
            Dependent(
                prompt=version.prompt,
                version=version,
                labels=labels.get(version.pk, []),
                newest=is_newest,
                ref=row.ref,
                label_name=row.label_name,
                pinned=row.snippet_version,
                current=current[row.label_name],
            )
        )
    found.sort(key=lambda d: (d.prompt.name, -d.version.number, d.ref))
    return found


@dataclass(frozen=True)
class RepinPreview:
    """A dependent rendered with its samples as it is and as it would be re-pinned; `problem` when it cannot be."""

    before: str = ""
    after: str = ""
    problem: str = ""


def repin_preview(dependent: Dependent, to_version: PromptVersion) -> RepinPreview:
    """How re-pinning one dependent to `to_version` of the snippet changes its text rendered with its samples."""
    from apps.prompts.content import content_of, render_content

    content = content_of(dependent.version)
    samples = dependent.version.sample_values()
    try:
        before = render_content(content, samples)
        content.includes = {**content.includes, dependent.ref: key_of(to_version)}
        pinned = pinned_versions(project=dependent.prompt.project, pins=content.includes)
        content.snippets = table_of(list(pinned.values()))
        content._include_key = None
        after = render_content(content, {**_samples_of(to_version), **samples})
    except sandbox.TemplateProblem as exc:
        return RepinPreview(problem=str(exc))
    if isinstance(before, list):
        before, after = _as_text(before), _as_text(after)
    return RepinPreview(before=before, after=after)


def _samples_of(version: PromptVersion) -> dict[str, Any]:
    return version.sample_values()


def _as_text(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def includes_of(version: PromptVersion) -> list[IncludePin]:
    """What a version includes, with the versions pinned."""
    return list(version.include_pins.select_related("snippet_version__prompt").order_by("ref"))
