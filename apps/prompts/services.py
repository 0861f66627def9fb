"""Writes of the prompt registry: prompts, versions, labels. Each writes its audit event in its transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import normalize_newlines

from apps.accounts.models import Project
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.prompts import includes, sandbox
from apps.prompts.content import Content, ContentProblem, build_content, content_of
from apps.prompts.models import (
    SPLIT_BUCKETS,
    IncludePin,
    Label,
    LabelAction,
    LabelGatePass,
    LabelMove,
    Prompt,
    PromptVersion,
    Tag,
    name_validator,
)

RESERVED_LABELS = {"latest"}


class PromptError(Exception):
    """A refused write; the message is shown to the user as is, and `code` names the refusal for the API."""

    code = "conflict"


class StaleParent(PromptError):
    code = "stale_parent"

    def __init__(self, newest: PromptVersion, parent_number: int | None):
        self.newest = newest
        self.parent_number = parent_number
        base = f"v{parent_number}" if parent_number else "an empty prompt"
        super().__init__(
            f"You started from {base}, but v{newest.number} was saved since by {newest.author_repr}. "
            "Review the difference and save on top of it."
        )


class LabelMoveRefused(PromptError):
    """A guard (such as a release policy) refused a label move; `code` says why for the API."""

    def __init__(self, message: str, *, code: str = "review_required"):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class LabelMoved:
    """What a label move did: `moved` is False when the label already pointed at the version."""

    label: Label
    previous: PromptVersion | None
    moved: bool


@dataclass(frozen=True)
class LabelMoveAttempt:
    prompt: Prompt
    label_name: str
    from_version: PromptVersion | None
    to_version: PromptVersion | None  # None when the label is being deleted
    action: str
    actor: Any
    # The canary arm of a split label, before and after (weights in basis points of SPLIT_BUCKETS).
    from_canary_version: PromptVersion | None = None
    from_canary_weight: int = 0
    canary_version: PromptVersion | None = None
    canary_weight: int = 0

    def versions_gaining(self) -> list[PromptVersion]:
        """The versions this move gives traffic they did not have: what a release gate must vet.

        A new stable version gains (a plain move, a promotion), and so does a canary arm whose weight
        grows (a start, a step). Shrinking or ending a canary back to the stable version it already
        splits with gains nothing new: that is always the way back.
        """
        gaining = []
        if self.to_version is not None and self.to_version != self.from_version:
            gaining.append(self.to_version)
        if self.canary_version is not None:
            before = self.from_canary_weight if self.from_canary_version == self.canary_version else 0
            if self.canary_version == self.from_version and self.to_version != self.from_version:
                before = SPLIT_BUCKETS - self.from_canary_weight
            if self.canary_weight > before and self.canary_version not in gaining:
                gaining.append(self.canary_version)
        return gaining


# Higher apps (reviews) register guards here, in their AppConfig.ready(). A guard
# raises LabelMoveRefused to stop a move and runs inside the move's transaction,
# after the label row is locked.
_label_move_guards: list[Callable[[LabelMoveAttempt], None]] = []


def register_label_move_guard(guard: Callable[[LabelMoveAttempt], None]) -> None:
    if guard not in _label_move_guards:
        _label_move_guards.append(guard)


# Higher apps (reviews: webhooks) are told of each saved version, inside the
# save's transaction; a hook that enqueues work does it with transaction.on_commit.
_version_saved_hooks: list[Callable[[PromptVersion, Any], None]] = []


def register_version_saved_hook(hook: Callable[[PromptVersion, Any], None]) -> None:
    if hook not in _version_saved_hooks:
        _version_saved_hooks.append(hook)


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    try:
        name_validator(name)
    except ValidationError:
        raise PromptError(
            f"'{name}' is not a valid {what} name: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit."
        ) from None
    return name


def _set_tags(prompt: Prompt, tags: list[str]) -> None:
    clean = sorted({tag.strip().lower()[:40] for tag in tags if tag.strip()})
    prompt.tags.set([Tag.objects.get_or_create(project=prompt.project, name=tag)[0] for tag in clean])


@transaction.atomic
def prompt_create(
    *, project: Project, name: str, actor, description: str = "", tags: list[str] | None = None
) -> Prompt:
    name = _check_name(name, "prompt")
    if Prompt.objects.filter(project=project, name=name).exists():
        raise PromptError(f"A prompt called '{name}' already exists in this project.")
    try:
        with transaction.atomic():
            prompt = Prompt.objects.create(
                project=project, name=name, description=description, created_by=actor_user(actor)
            )
    except IntegrityError:
        raise PromptError(f"A prompt called '{name}' already exists in this project.") from None
    _set_tags(prompt, tags or [])
    audit_record(project_id=project.pk, actor=actor, action="prompt.created", obj=prompt, after={"name": name})
    return prompt


@transaction.atomic
def prompt_update(*, prompt: Prompt, actor, description: str, tags: list[str]) -> Prompt:
    before = {"description": prompt.description, "tags": sorted(t.name for t in prompt.tags.all())}
    prompt.description = description
    prompt.save(update_fields=["description", "updated_at"])
    _set_tags(prompt, tags)
    after = {"description": description, "tags": sorted(t.name for t in prompt.tags.all())}
    if before != after:
        audit_record(
            project_id=prompt.project_id, actor=actor, action="prompt.updated", obj=prompt, before=before, after=after
        )
    return prompt


@transaction.atomic
def prompt_version_create(
    *,
    prompt: Prompt,
    content: Content,
    parent_number: int | None,
    message: str,
    actor,
) -> PromptVersion:
    """Save a new version on top of `parent_number`; content equal to the newest version is refused.

    The parent must still be the newest version; otherwise StaleParent is
    raised and nothing is saved. The prompt row is locked so two saves on the
    same parent cannot both succeed.
    """
    version, created = prompt_version_save(
        prompt=prompt, content=content, parent_number=parent_number, message=message, actor=actor
    )
    if not created:
        raise ContentProblem(f"Nothing changed since v{version.number}; edit the prompt before saving.")
    return version


@transaction.atomic
def prompt_version_save(
    *,
    prompt: Prompt,
    content: Content,
    parent_number: int | None,
    message: str,
    actor,
) -> tuple[PromptVersion, bool]:
    """(version, created): a new version on top of `parent_number`, or the newest one when it has this content.

    Decided under the prompt's row lock, so of two saves of one content on one parent exactly one creates
    and the other gets (that version, False). A parent that is no longer the newest is StaleParent.
    """
    Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
    newest = PromptVersion.objects.filter(prompt=prompt).order_by("-number").first()
    if newest is not None and newest.number != parent_number:
        raise StaleParent(newest, parent_number)
    if newest is None and parent_number is not None:
        raise PromptError(f"v{parent_number} does not exist.")
    pinned = _checked_pins(prompt, content)
    content_hash = content.hash()
    if newest is not None and newest.content_hash == content_hash:
        return newest, False
    version = PromptVersion.objects.create(
        prompt=prompt,
        number=(newest.number + 1) if newest else 1,
        kind=content.kind,
        template=content.template,
        messages=content.messages,
        config=content.config,
        variables=content.variables,
        message=message.strip()[:500],
        author=actor_user(actor),
        author_repr=actor_repr(actor),
        parent=newest,
        content_hash=content_hash,
    )
    IncludePin.objects.bulk_create(
        IncludePin(version=version, ref=ref, label_name=ref.rpartition("@")[2], snippet_version=snippet)
        for ref, snippet in pinned.items()
    )
    prompt.save(update_fields=["updated_at"])
    audit_record(
        project_id=prompt.project_id,
        actor=actor,
        action="prompt.version_saved",
        obj=version,
        after={"number": version.number, "content_hash": content_hash, "message": version.message},
    )
    for hook in _version_saved_hooks:
        hook(version, actor)
    return version, True


def _checked_pins(prompt: Prompt, content: Content) -> dict[str, PromptVersion]:
    """The snippet versions the content's pins name, in the prompt's project, with no cycle back to it."""
    if not content.includes:
        return {}
    field = "template" if content.kind == "text" else "messages"
    try:
        pinned = includes.pinned_versions(project=prompt.project, pins=content.includes)
        includes.check_no_cycle(
            name=prompt.name, sources=content.sources(), pins=content.includes, table=content.snippets
        )
    except sandbox.TemplateProblem as exc:
        raise ContentProblem(str(exc), field=field, line=exc.line) from None
    if any(version.prompt_id == prompt.pk for version in pinned.values()):
        raise ContentProblem("a prompt cannot include itself", field=field)
    # The texts the content was checked with must be the ones these pins render with in this project.
    if includes.table_of(list(pinned.values())) != content.snippets:
        raise ContentProblem("the included snippets are not this project's; resolve the includes again", field=field)
    return pinned


@dataclass(frozen=True)
class Repinned:
    """What dependents_repin did for one dependent prompt: its new version, or why none was saved."""

    prompt: Prompt
    version: PromptVersion | None
    problem: str = ""


@transaction.atomic
def dependents_repin(*, snippet: Prompt, label_name: str, actor) -> list[Repinned]:
    """Save a version of each prompt whose newest version pins an older version of `snippet@label_name`.

    The new version is the newest one with that include pinned to where the label points now (its other
    pins kept), on top of it, for review like any edit; a prompt whose re-pin is refused (a cycle, a
    variable type that no longer fits) is reported, not saved. Running it twice saves nothing new.
    """
    current = includes.labelled_version(snippet, label_name)
    if current is None:
        raise PromptError(f"{snippet.name} has no label '{label_name}'.")
    done: list[Repinned] = []
    for dependent in includes.dependents(snippet=snippet, label_name=label_name):
        if not dependent.newest or not dependent.stale:
            continue
        base = content_of(dependent.version)
        keep = {ref: key for ref, key in base.includes.items() if ref != dependent.ref}
        try:
            with transaction.atomic():
                content = build_content(
                    kind=base.kind,
                    template=base.template,
                    messages=base.messages or None,
                    config=base.config,
                    variable_specs=base.variables,
                    prompt=dependent.prompt,
                    keep_pins=keep,
                )
                version, created = prompt_version_save(
                    prompt=dependent.prompt,
                    content=content,
                    parent_number=dependent.version.number,
                    message=f"Re-pin {dependent.ref} to v{current.number} (was v{dependent.pinned.number})",
                    actor=actor,
                )
        except (ContentProblem, PromptError) as exc:
            done.append(Repinned(prompt=dependent.prompt, version=None, problem=str(exc)))
            continue
        done.append(Repinned(prompt=dependent.prompt, version=version if created else None))
    return done


def _record_move(attempt: LabelMoveAttempt, reason: str) -> LabelMove:
    move = LabelMove.objects.create(
        prompt=attempt.prompt,
        label_name=attempt.label_name,
        action=attempt.action,
        from_version=attempt.from_version,
        to_version=attempt.to_version,
        from_canary_version=attempt.from_canary_version,
        from_canary_weight=attempt.from_canary_weight,
        to_canary_version=attempt.canary_version,
        to_canary_weight=attempt.canary_weight,
        actor=actor_user(attempt.actor),
        actor_repr=actor_repr(attempt.actor),
        reason=reason.strip()[:500],
    )
    audit_record(
        project_id=attempt.prompt.project_id,
        actor=attempt.actor,
        action=f"label.{attempt.action}",
        object_type="prompts.label",
        object_id=f"{attempt.prompt.pk}:{attempt.label_name}",
        object_repr=f"{attempt.prompt.name}@{attempt.label_name}",
        before=_label_state(attempt.from_version, attempt.from_canary_version, attempt.from_canary_weight),
        after=(
            {**_label_state(attempt.to_version, attempt.canary_version, attempt.canary_weight), "reason": move.reason}
            if attempt.to_version
            else None
        ),
    )
    return move


def _label_state(version: PromptVersion | None, canary: PromptVersion | None, weight: int) -> dict | None:
    if version is None:
        return None
    if canary is None:
        return {"version": version.number}
    return {"version": version.number, "canary_version": canary.number, "canary_weight": weight}


def _run_guards(attempt: LabelMoveAttempt) -> None:
    for guard in _label_move_guards:
        guard(attempt)


@transaction.atomic
def label_move(
    *,
    prompt: Prompt,
    label_name: str,
    version: PromptVersion,
    actor,
    reason: str = "",
    rollback: bool = False,
    canary_version: PromptVersion | None = None,
    canary_weight: int = 0,
) -> Label:
    """Point a label at a version, creating the label if it is new; a label already there is refused.

    The label row is locked for the move, the guards registered by higher apps
    run under that lock, and the move and its audit event commit together.
    """
    outcome = label_set(
        prompt=prompt,
        label_name=label_name,
        version=version,
        actor=actor,
        reason=reason,
        rollback=rollback,
        canary_version=canary_version,
        canary_weight=canary_weight,
    )
    if not outcome.moved:
        raise PromptError(f"{outcome.label.name} already points at v{version.number}.")
    return outcome.label


@transaction.atomic
def label_set(
    *,
    prompt: Prompt,
    label_name: str,
    version: PromptVersion,
    actor,
    reason: str = "",
    rollback: bool = False,
    canary_version: PromptVersion | None = None,
    canary_weight: int = 0,
) -> LabelMoved:
    """Like label_move, but a label already at the version is an outcome (moved=False), decided under its lock.

    With `canary_version` the label becomes a split: `canary_weight` basis points (1..9999 of
    SPLIT_BUCKETS) of the keys get the canary, the rest `version`. A plain move ends any split.
    """
    label_name = _check_name(label_name, "label")
    if label_name in RESERVED_LABELS:
        raise PromptError("'latest' always follows the newest version; it cannot be moved by hand.")
    if version.prompt_id != prompt.pk:
        raise PromptError("That version belongs to another prompt.")
    if canary_version is None:
        canary_weight = 0
    else:
        if canary_version.prompt_id != prompt.pk:
            raise PromptError("That canary version belongs to another prompt.")
        if canary_version.pk == version.pk:
            raise PromptError("A canary needs a version other than the stable one.")
        if not 0 < canary_weight < SPLIT_BUCKETS:
            raise PromptError(f"A canary's weight is between 1 and {SPLIT_BUCKETS - 1} basis points.")
    label = Label.objects.select_for_update().filter(prompt=prompt, name=label_name).first()
    canary_id = canary_version.pk if canary_version else None
    if (
        label is not None
        and label.version_id == version.pk
        and label.canary_version_id == canary_id
        and label.canary_weight == canary_weight
    ):
        return LabelMoved(label=label, previous=version, moved=False)
    if label is None:
        action = LabelAction.CREATED
    elif rollback:
        action = LabelAction.ROLLED_BACK
    else:
        action = LabelAction.SPLIT if canary_version is not None else LabelAction.MOVED
    attempt = LabelMoveAttempt(
        prompt=prompt,
        label_name=label_name,
        from_version=label.version if label else None,
        to_version=version,
        action=action,
        actor=actor,
        from_canary_version=label.canary_version if label else None,
        from_canary_weight=label.canary_weight if label else 0,
        canary_version=canary_version,
        canary_weight=canary_weight,
    )
    _run_guards(attempt)
    arms = {"version": version, "canary_version": canary_version, "canary_weight": canary_weight}
    if label is None:
        try:
            with transaction.atomic(), _gate_pass(prompt=prompt, label_name=label_name, **arms):
                label = Label.objects.create(prompt=prompt, name=label_name, **arms)
        except IntegrityError:
            raise PromptError(f"{label_name} was created by someone else just now; try again.") from None
    else:
        label.version, label.canary_version, label.canary_weight = version, canary_version, canary_weight
        with _gate_pass(prompt=prompt, label_name=label_name, **arms):
            label.save(update_fields=["version", "canary_version", "canary_weight", "updated_at"])
    _record_move(attempt, reason)
    return LabelMoved(label=label, previous=attempt.from_version, moved=True)


@contextmanager
def _gate_pass(
    *,
    prompt: Prompt,
    label_name: str,
    version: PromptVersion,
    canary_version: PromptVersion | None = None,
    canary_weight: int = 0,
) -> Iterator[None]:
    """Let the database accept this one label write (its triggers refuse a label write without a pass).

    Called only by label_set (label_move), after the guards passed and inside its transaction,
    so the pass never outlives the move and the move is always recorded.
    """
    gate_pass = LabelGatePass.objects.create(
        prompt_id=prompt.pk,
        label_name=label_name,
        version_id=version.pk,
        canary_version_id=canary_version.pk if canary_version else None,
        canary_weight=canary_weight,
    )
    yield
    LabelGatePass.objects.filter(pk=gate_pass.pk).delete()


@transaction.atomic
def label_delete(*, prompt: Prompt, label_name: str, actor, reason: str = "") -> None:
    label = Label.objects.select_for_update().filter(prompt=prompt, name=label_name).first()
    if label is None:
        raise PromptError(f"There is no label '{label_name}'.")
    attempt = LabelMoveAttempt(
        prompt=prompt,
        label_name=label_name,
        from_version=label.version,
        to_version=None,
        action=LabelAction.DELETED,
        actor=actor,
        from_canary_version=label.canary_version,
        from_canary_weight=label.canary_weight,
    )
    _run_guards(attempt)
    label.delete()
    _record_move(attempt, reason)


def snippet_extract(*, version: PromptVersion, text: str, snippet_name: str, actor) -> PromptVersion:
    """Move `text` out of a version into a new snippet prompt and include it where it was.

    The snippet `snippet_name` (a new text prompt, v1 = `text`, its variables' specs taken from the
    version) is included as `{% include "snippet_name@latest" %}` in place of every occurrence of the
    text, in a new version of the prompt on top of `version` (which must be the newest; StaleParent
    otherwise). Nothing is saved unless both saves succeed. Labels do not move: releasing the new
    version goes through the gate like any other.
    """
    prompt = version.prompt
    text = normalize_newlines(text)
    if not text.strip():
        raise ContentProblem("Paste the text to move into the snippet.")
    content = content_of(version)
    if not any(text in source for _, source in content.sources()):
        raise ContentProblem("That text is not in this version (it must match exactly, spaces and line breaks too).")
    include = '{% include "' + snippet_name + '@latest" %}'
    with transaction.atomic():
        snippet = prompt_create(
            project=prompt.project,
            name=snippet_name,
            actor=actor,
            description=f"Extracted from {prompt.name} v{version.number}.",
        )
        snippet_content = build_content(
            kind="text", template=text, variable_specs=content.variables, project=prompt.project, prompt=snippet
        )
        prompt_version_create(
            prompt=snippet,
            content=snippet_content,
            parent_number=None,
            message=f"Extracted from {prompt.name} v{version.number}",
            actor=actor,
        )
        if version.kind == "text":
            changed = {"template": content.template.replace(text, include)}
        else:
            changed = {"messages": [{**m, "content": m["content"].replace(text, include)} for m in content.messages]}
        new_content = build_content(
            kind=version.kind,
            template=changed.get("template", ""),
            messages=changed.get("messages"),
            config=content.config,
            variable_specs=content.variables,
            project=prompt.project,
            prompt=prompt,
            keep_pins=content.includes,
        )
        return prompt_version_create(
            prompt=prompt,
            content=new_content,
            parent_number=version.number,
            message=f"Extract the snippet {snippet_name}",
            actor=actor,
        )
