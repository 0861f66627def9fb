"""Reads of the delivery API, shaped for speed: small `values()` queries, scoped to the key's project."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from django.db.models import OuterRef, Subquery
from prompt_studio import assign

from apps.api import cache
from apps.api.cache import Resolved
from apps.api.errors import ApiError
from apps.prompts import includes
from apps.prompts.models import Label, Prompt, PromptVersion

LATEST = "latest"


def make_etag(*parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f'"{digest[:40]}"'


def _prompt_missing(project_id: int, name: str) -> ApiError:
    return ApiError(404, "prompt_not_found", f"No prompt called '{name}' in this project.", prompt=name)


def _labels_of(version_id: int) -> list[str]:
    return list(Label.objects.filter(version_id=version_id).order_by("name").values_list("name", flat=True))


def resolve(*, project_id: int, name: str, label: str | None = None, number: int | None = None) -> Resolved:
    """(prompt, label) or (prompt, version number) -> version id and ETag, from the process cache when it can."""
    cache_key = (project_id, name, label, number)
    found = cache.resolved_get(cache_key)
    if found is not None:
        return found
    epoch = cache.epoch()
    versions = PromptVersion.objects.filter(prompt__project_id=project_id, prompt__name=name)
    if number is not None:
        row = versions.filter(number=number).values_list("id", "content_hash").first()
        if row is None:
            if not Prompt.objects.filter(project_id=project_id, name=name).exists():
                raise _prompt_missing(project_id, name)
            raise ApiError(404, "version_not_found", f"{name} has no version {number}.", prompt=name)
    elif label == LATEST:
        row = versions.order_by("-number").values_list("id", "content_hash").first()
        if row is None:
            if not Prompt.objects.filter(project_id=project_id, name=name).exists():
                raise _prompt_missing(project_id, name)
            raise ApiError(404, "version_not_found", f"{name} has no version yet.", prompt=name)
    else:
        row = (
            Label.objects.filter(prompt__project_id=project_id, prompt__name=name, name=label)
            .values_list(
                "version_id",
                "version__content_hash",
                "canary_version_id",
                "canary_version__content_hash",
                "canary_weight",
            )
            .first()
        )
        if row is None:
            if not Prompt.objects.filter(project_id=project_id, name=name).exists():
                raise _prompt_missing(project_id, name)
            raise ApiError(404, "label_not_found", f"{name} has no label '{label}'.", prompt=name, label=label)
    version_id, content_hash, *canary = row
    labels = tuple(_labels_of(version_id))
    etag = make_etag(content_hash, version_id, *labels)
    split = {}
    if canary and canary[0]:
        canary_labels = tuple(_labels_of(canary[0]))
        split = {"canary_id": canary[0], "canary_hash": canary[1], "canary_weight": canary[2],
                 "canary_labels": canary_labels}  # fmt: skip
        etag = make_etag(content_hash, version_id, *labels, "split", *canary, *canary_labels)
    resolved = Resolved(version_id=version_id, etag=etag, labels=labels, **split)
    cache.resolved_put(cache_key, resolved, read_at_epoch=epoch)
    return resolved


def version_load(*, version_id: int) -> PromptVersion:
    return PromptVersion.objects.select_related("prompt").get(pk=version_id)


def version_body(
    version: PromptVersion,
    labels: list[str] | tuple[str, ...] | None = None,
    composition: tuple[dict[str, str], dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The delivery document of one version (the same shape in /prompts/{name} and /releases).

    `includes` pins each `{% include %}` to a key of `snippets`, which holds the text of every snippet
    version the document needs: an app renders it offline exactly as the studio does.
    """
    is_text = version.kind == "text"
    pins, snippets = composition if composition is not None else includes.pins_of(version)
    return {
        "name": version.prompt.name,
        "version": version.number,
        "type": version.kind,
        "template": version.template if is_text else None,
        "messages": None if is_text else version.messages,
        "config": version.config,
        "variables": [
            {"name": spec["name"], "type": spec.get("type") or "string", "description": spec.get("description", "")}
            for spec in version.variables
        ],
        "labels": list(labels) if labels is not None else _labels_of(version.pk),
        "includes": pins,
        "snippets": snippets,
        "content_hash": version.content_hash,
        "created_at": version.created_at.isoformat(),
    }


def arm_resolve(resolved: Resolved, *, name: str, label: str, key: str | None) -> tuple[str, Resolved]:
    """(arm, what to serve) for a split label: the key's sticky arm, or the stable one without a key.

    Each arm has its own ETag (the label's split ETag and the arm), so a client holding the stable
    document is told 304 only while its key still gets the stable arm of this split.
    """
    if key is None:
        return assign.STABLE, resolved
    chosen = assign.arm(name, label, key, resolved.canary_weight)
    etag = make_etag(resolved.etag, "arm", chosen)
    if chosen == assign.CANARY:
        return chosen, replace(resolved, version_id=resolved.canary_id, etag=etag, labels=resolved.canary_labels)
    return chosen, replace(resolved, etag=etag)


def split_body(
    body: dict[str, Any], *, resolved: Resolved, arm: str, stable_id: int, embed_canary: bool
) -> dict[str, Any]:
    """A version document of a split label, naming its arm; without a key it carries the canary's document
    too, so a client assigns keys itself (prompt_studio.assign) and keeps doing so offline."""
    numbers = dict(
        PromptVersion.objects.filter(pk__in=[stable_id, resolved.canary_id]).values_list("pk", "number")
    )  # fmt: skip
    split: dict[str, Any] = {
        "stable_version": numbers.get(stable_id),
        "canary_version": numbers.get(resolved.canary_id),
        "canary_weight": resolved.canary_weight,
        "buckets": assign.BUCKETS,
    }
    if embed_canary:
        split["canary"] = version_body(version_load(version_id=resolved.canary_id))
    return {**body, "arm": arm, "split": split}


def prompt_list(*, project_id: int) -> list[dict[str, Any]]:
    prompts = list(
        Prompt.objects.filter(project_id=project_id).order_by("name").values_list("id", "name", "description")
    )
    labels: dict[int, dict[str, int]] = {}
    for prompt_id, label_name, number in Label.objects.filter(prompt__project_id=project_id).values_list(
        "prompt_id", "name", "version__number"
    ):
        labels.setdefault(prompt_id, {})[label_name] = number
    newest = dict(
        PromptVersion.objects.filter(prompt__project_id=project_id, number=_newest_number())
        .values_list("prompt_id", "number")
    )  # fmt: skip
    return [
        {"name": name, "description": description, "latest_version": newest.get(pk), "labels": labels.get(pk, {})}
        for pk, name, description in prompts
    ]


def _newest_number() -> Subquery:
    return Subquery(
        PromptVersion.objects.filter(prompt_id=OuterRef("prompt_id")).order_by("-number").values("number")[:1]
    )


def _released(*, project_id: int, label: str) -> tuple[list[tuple[str, int, str]], dict[int, list[str]], str]:
    """The (name, version id, content hash) released under a label, each version's labels, and the ETag of both."""
    if label == LATEST:
        rows = PromptVersion.objects.filter(prompt__project_id=project_id, number=_newest_number()).values_list(
            "prompt__name", "id", "content_hash"
        )
    else:
        rows = Label.objects.filter(prompt__project_id=project_id, name=label).values_list(
            "prompt__name", "version_id", "version__content_hash"
        )
    rows = sorted(rows)
    splits = _splits(project_id=project_id, label=label)
    if not rows:
        raise ApiError(404, "label_not_found", f"No prompt in this project has the label '{label}'.", label=label)
    labels: dict[int, list[str]] = {}
    version_ids = [version_id for _, version_id, _ in rows]
    for version_id, label_name in (
        Label.objects.filter(version_id__in=version_ids).order_by("name").values_list("version_id", "name")
    ):
        labels.setdefault(version_id, []).append(label_name)
    parts = [f"{name}:{vid}:{content_hash}:{','.join(labels.get(vid, []))}" for name, vid, content_hash in rows]
    parts += [f"split:{name}:{split}" for name, split in sorted(splits.items())]
    return rows, labels, make_etag(label, *parts)


def _splits(*, project_id: int, label: str) -> dict[str, tuple[int, str, int]]:
    """prompt name -> (canary version id, its content hash, weight) of the label's canary splits."""
    if label == LATEST:
        return {}
    return {
        name: (canary_id, canary_hash, weight)
        for name, canary_id, canary_hash, weight in Label.objects.filter(
            prompt__project_id=project_id, name=label, canary_version__isnull=False
        ).values_list("prompt__name", "canary_version_id", "canary_version__content_hash", "canary_weight")
    }


def releases_resolve(*, project_id: int, label: str) -> Resolved:
    """The ETag of the releases document of a label (version_id is unused)."""
    cache_key = (project_id, "\x00releases", label, None)
    found = cache.resolved_get(cache_key)
    if found is not None:
        return found
    epoch = cache.epoch()
    _, _, etag = _released(project_id=project_id, label=label)
    resolved = Resolved(version_id=0, etag=etag)
    cache.resolved_put(cache_key, resolved, read_at_epoch=epoch)
    return resolved


def releases_body(*, project_id: int, project_slug: str, label: str) -> tuple[dict[str, Any], str]:
    """Every prompt released under the label in one document, and its ETag (computed from the same rows)."""
    rows, labels, etag = _released(project_id=project_id, label=label)
    versions = list(PromptVersion.objects.filter(pk__in=[vid for _, vid, _ in rows]).select_related("prompt"))
    composed = includes.compositions(versions)
    prompts = {v.prompt.name: version_body(v, labels.get(v.pk, []), composed[v.pk]) for v in versions}
    for name, (canary_id, canary_hash, weight) in _splits(project_id=project_id, label=label).items():
        if name in prompts:
            split = Resolved(version_id=0, etag="", canary_id=canary_id, canary_hash=canary_hash, canary_weight=weight)
            stable_id = next(vid for row_name, vid, _ in rows if row_name == name)
            prompts[name] = split_body(
                prompts[name], resolved=split, arm=assign.STABLE, stable_id=stable_id, embed_canary=True
            )
    body = {"project": project_slug, "label": label, "prompts": dict(sorted(prompts.items()))}
    return body, etag


def version_history(*, project_id: int, name: str) -> list[dict[str, Any]]:
    prompt = Prompt.objects.filter(project_id=project_id, name=name).first()
    if prompt is None:
        raise _prompt_missing(project_id, name)
    labels: dict[int, list[str]] = {}
    for version_id, label_name in (
        Label.objects.filter(prompt=prompt).order_by("name").values_list("version_id", "name")
    ):
        labels.setdefault(version_id, []).append(label_name)
    return [
        {
            "version": v.number,
            "type": v.kind,
            "content_hash": v.content_hash,
            "message": v.message,
            "author": v.author_repr,
            "parent_version": v.parent.number if v.parent else None,
            "labels": labels.get(v.pk, []),
            "created_at": v.created_at.isoformat(),
        }
        for v in PromptVersion.objects.filter(prompt=prompt).select_related("parent").order_by("-number")
    ]
