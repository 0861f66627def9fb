"""Writes of canary releases. Every change of weights is a label move through the release gate
(prompts.services.label_set), so it is audited, in the label's history and undoable; on a protected label
each move runs as the release of the canary's approved review, which the gate re-checks under its lock."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.permissions import require_role
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.prompts import services as prompt_services
from apps.prompts.models import SPLIT_BUCKETS, Label, Prompt, PromptVersion
from apps.reviews import gate
from apps.reviews.models import ReviewRequest, ReviewStatus
from apps.rollouts import selectors
from apps.rollouts.models import EventKind, Rollout, RolloutCheck, RolloutEvent, RolloutStatus
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookEvent

WATCHER = "canary watcher"  # the actor of automatic actions, as the audit log shows it


class RolloutError(Exception):
    """A refused canary action; the message is shown as is."""


class InvalidPlan(RolloutError):
    """Steps, guardrails or alpha that no canary can have (the API answers 400 invalid_plan)."""


def _clean_steps(steps: list[int]) -> list[int]:
    steps = [int(s) for s in steps]
    if not steps or steps[-1] != SPLIT_BUCKETS or any(not 0 < s <= SPLIT_BUCKETS for s in steps):
        raise InvalidPlan("Steps are rising weights in basis points (1..10000) that end at 10000 (100%).")
    if steps != sorted(set(steps)):
        raise InvalidPlan("Steps must rise: each step gives the canary more traffic than the one before.")
    return steps


def _clean_guardrails(guardrails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clean = []
    for spec in guardrails:
        if spec.get("metric") not in selectors.METRICS:
            raise InvalidPlan(
                f"Unknown guardrail metric {spec.get('metric')!r}: one of {', '.join(selectors.METRICS)}."
            )
        tolerance = float(spec.get("tolerance") or 0.0)
        if tolerance < 0:
            raise InvalidPlan("A tolerated degradation is zero or more.")
        item = {"metric": spec["metric"], "tolerance": tolerance}
        if spec["metric"] == "score":
            if not spec.get("name"):
                raise InvalidPlan("The online evaluator guardrail names its score.")
            item["name"] = str(spec["name"])[:100]
        clean.append(item)
    if not clean:
        raise InvalidPlan("A canary needs at least one guardrail.")
    return clean


def _approved_review(*, prompt: Prompt, label_name: str, version: PromptVersion) -> ReviewRequest | None:
    """The newest active review of exactly this version for this label; the gate decides whether it suffices.

    A version released under the label before needs none: the gate lets it back on as a rollback."""
    return (
        ReviewRequest.objects.filter(
            prompt=prompt,
            label_name=label_name,
            version=version,
            content_hash=version.content_hash,
            status__in=(ReviewStatus.APPROVED, ReviewStatus.OPEN),
        )
        .order_by("-updated_at", "-id")
        .first()
    )


def _move(rollout: Rollout, *, weight: int, actor: Any, reason: str, rollback: bool = False) -> None:
    """Point the label at the split for `weight` (0: the stable version alone; 10000: the canary alone)."""
    releasing = gate.releasing(rollout.review_id) if rollout.review_id and weight > 0 else nullcontext()
    with releasing:
        if weight <= 0:
            version, canary = rollout.stable_version, None
        elif weight >= SPLIT_BUCKETS:
            version, canary = rollout.canary_version, None
        else:
            version, canary = rollout.stable_version, rollout.canary_version
        prompt_services.label_set(
            prompt=rollout.prompt,
            label_name=rollout.label_name,
            version=version,
            canary_version=canary,
            canary_weight=weight if canary else 0,
            actor=actor,
            reason=reason,
            rollback=rollback,
        )


def _event(
    rollout: Rollout,
    *,
    kind: str,
    from_weight: int,
    to_weight: int,
    actor: Any,
    automatic: bool,
    reason: str = "",
    evidence: dict | None = None,
) -> RolloutEvent:
    event = RolloutEvent.objects.create(
        rollout=rollout,
        kind=kind,
        from_weight=from_weight,
        to_weight=to_weight,
        automatic=automatic,
        actor_repr=actor_repr(actor),
        reason=reason[:500],
        evidence=evidence or {},
    )
    audit_record(
        project_id=rollout.project_id,
        actor=actor,
        action=f"canary.{kind}",
        obj=rollout,
        before={"weight": from_weight},
        after={"weight": to_weight, "automatic": automatic, "reason": event.reason, "evidence": evidence or {}},
    )
    hook = {
        EventKind.STARTED: WebhookEvent.CANARY_STARTED,
        EventKind.STEPPED: WebhookEvent.CANARY_STEPPED,
        EventKind.PROMOTED: WebhookEvent.CANARY_PROMOTED,
        EventKind.ROLLED_BACK: WebhookEvent.CANARY_ROLLED_BACK,
    }.get(kind, WebhookEvent.CANARY_PAUSED)
    webhooks.emit(
        project_id=rollout.project_id,
        event=hook,
        data={
            "prompt": rollout.prompt.name,
            "label": rollout.label_name,
            "stable_version": rollout.stable_version.number,
            "canary_version": rollout.canary_version.number,
            "kind": kind,
            "from_weight": from_weight,
            "to_weight": to_weight,
            "automatic": automatic,
            "actor": actor_repr(actor),
            "reason": event.reason,
            "evidence": evidence or {},
        },
    )
    return event


@transaction.atomic
def rollout_start(
    *,
    prompt: Prompt,
    label_name: str,
    canary_version: PromptVersion,
    actor: Any,
    steps: list[int] | None = None,
    min_volume: int = 200,
    min_minutes: float = 10.0,
    guardrails: list[dict[str, Any]] | None = None,
    alpha: float = 0.05,
) -> Rollout:
    """Split the label between its version and `canary_version` at the first step.

    On a protected label the canary needs the same approved review as a full release: the label move
    runs as the release of the canary's review, and the gate refuses it otherwise (LabelMoveRefused).
    """
    if _is_person(actor):
        require_role(project_id=prompt.project_id, actor=actor, role=Role.EDITOR, what="Starting a canary")
    steps = _clean_steps(steps or [500, 2500, 5000, SPLIT_BUCKETS])
    guardrails = _clean_guardrails(guardrails or [{"metric": "error_rate", "tolerance": 0.0}])
    if not 0 < alpha < 0.5:
        raise InvalidPlan("alpha is between 0 and 0.5.")
    label = Label.objects.select_for_update().filter(prompt=prompt, name=label_name).first()
    if label is None:
        raise RolloutError(f"{prompt.name} has no label '{label_name}': release a version first.")
    if label.canary_version_id is not None:
        raise RolloutError(f"{label_name} is already split for a canary.")
    if canary_version.prompt_id != prompt.pk or canary_version.pk == label.version_id:
        raise RolloutError(f"v{canary_version.number} is not another version of {prompt.name}.")
    review = _approved_review(prompt=prompt, label_name=label_name, version=canary_version)
    now = timezone.now()
    try:
        with transaction.atomic():
            rollout = Rollout.objects.create(
                project_id=prompt.project_id,
                prompt=prompt,
                label_name=label_name,
                stable_version=label.version,
                canary_version=canary_version,
                review_id=review.pk if review else None,
                steps=steps,
                min_volume=max(int(min_volume), 1),
                min_minutes=max(float(min_minutes), 0.0),
                guardrails=guardrails,
                alpha=alpha,
                started_at=now,
                step_started_at=now,
                created_by=actor_user(actor),
                created_by_repr=actor_repr(actor),
            )
    except IntegrityError:
        raise RolloutError(f"{label_name} already has a canary running.") from None
    weight = steps[0]
    _move(
        rollout, weight=weight, actor=actor, reason=f"Canary of v{canary_version.number} started at {weight / 100:g}%"
    )
    if weight >= SPLIT_BUCKETS:
        rollout.status, rollout.finished_at = RolloutStatus.PROMOTED, now
        rollout.save(update_fields=["status", "finished_at"])
    plan = {"steps": steps, "guardrails": guardrails, "review": rollout.review_id}
    _event(
        rollout,
        kind=EventKind.STARTED,
        from_weight=0,
        to_weight=weight,
        actor=actor,
        automatic=False,
        reason="started",
        evidence=plan,
    )
    return rollout


def _lock(rollout_id: int) -> Rollout | None:
    return (
        Rollout.objects.select_for_update(of=("self",))
        .select_related("prompt", "stable_version", "canary_version")
        .filter(pk=rollout_id)
        .first()
    )


def _require_active(rollout: Rollout) -> None:
    if not rollout.is_active:
        raise RolloutError(f"This canary is {rollout.get_status_display().lower()}; nothing more can be done.")


def _is_person(actor: Any) -> bool:
    """A signed-in user (role-checked here); an API key's scope and the watcher were checked by their callers."""
    return isinstance(actor, AbstractBaseUser)


def _person(rollout: Rollout, actor: Any, what: str) -> None:
    if _is_person(actor):
        require_role(project_id=rollout.project_id, actor=actor, role=Role.EDITOR, what=what)


def _active_for(rollout_id: int, actor: Any, what: str) -> Rollout:
    """The canary, locked, still active, and the actor allowed to act on it."""
    rollout = _lock(rollout_id)
    if rollout is None:
        raise RolloutError("No such canary.")
    _require_active(rollout)
    _person(rollout, actor, what)
    return rollout


@transaction.atomic
def rollout_promote(
    *, rollout_id: int, actor: Any, automatic: bool = False, evidence: dict | None = None, reason: str = ""
) -> Rollout:
    """Move the canary to its next step (the last step ends it: the label points at the canary alone)."""
    rollout = _active_for(rollout_id, actor, "Promoting a canary")
    if not _label_matches(rollout):
        raise RolloutError(f"{rollout.label_name} was moved outside this canary; start a new canary instead.")
    before = rollout.weight
    rollout.step_index += 1
    weight = rollout.weight
    final = weight >= SPLIT_BUCKETS
    why = reason or ("automatic: the step's volume was reached without harm" if automatic else "promoted by hand")
    _move(
        rollout,
        weight=weight,
        actor=actor,
        reason=f"Canary of v{rollout.canary_version.number} at {weight / 100:g}%: {why}",
    )
    rollout.step_started_at = timezone.now()
    fields = ["step_index", "step_started_at"]
    if final:
        rollout.status, rollout.finished_at = RolloutStatus.PROMOTED, rollout.step_started_at
        fields += ["status", "finished_at"]
    rollout.save(update_fields=fields)
    _event(
        rollout,
        kind=EventKind.PROMOTED if final else EventKind.STEPPED,
        from_weight=before,
        to_weight=weight,
        actor=actor,
        automatic=automatic,
        reason=why,
        evidence=evidence,
    )
    return rollout


@transaction.atomic
def rollout_rollback(
    *, rollout_id: int, actor: Any, automatic: bool = False, evidence: dict | None = None, reason: str = ""
) -> Rollout:
    """Send all traffic back to the stable version: always allowed (the gate vets nothing new)."""
    rollout = _active_for(rollout_id, actor, "Rolling back a canary")
    before = rollout.weight
    why = reason or ("automatic: a guardrail is worse beyond its tolerance" if automatic else "rolled back by hand")
    _move(
        rollout,
        weight=0,
        actor=actor,
        rollback=True,
        reason=f"Canary of v{rollout.canary_version.number} rolled back: {why}",
    )
    rollout.status, rollout.finished_at = RolloutStatus.ROLLED_BACK, timezone.now()
    rollout.save(update_fields=["status", "finished_at"])
    _event(
        rollout,
        kind=EventKind.ROLLED_BACK,
        from_weight=before,
        to_weight=0,
        actor=actor,
        automatic=automatic,
        reason=why,
        evidence=evidence,
    )
    return rollout


@transaction.atomic
def rollout_pause(*, rollout_id: int, actor: Any, pause: bool = True) -> Rollout:
    """Pause (the watcher neither promotes nor rolls back; the split stays) or resume a canary."""
    rollout = _active_for(rollout_id, actor, "Pausing a canary")
    wanted = RolloutStatus.PAUSED if pause else RolloutStatus.RUNNING
    if rollout.status == wanted:
        return rollout
    rollout.status = wanted
    fields = ["status"]
    if not pause:
        rollout.step_started_at = timezone.now()
        fields.append("step_started_at")
    rollout.save(update_fields=fields)
    _event(
        rollout,
        kind=EventKind.PAUSED if pause else EventKind.RESUMED,
        from_weight=rollout.weight,
        to_weight=rollout.weight,
        actor=actor,
        automatic=False,
        reason="paused" if pause else "resumed",
    )
    return rollout


def _label_matches(rollout: Rollout) -> bool:
    """Whether the label still is the split this canary put there (a person may have moved it by hand)."""
    label = Label.objects.filter(prompt=rollout.prompt, name=rollout.label_name).first()
    return (
        label is not None
        and label.version_id == rollout.stable_version_id
        and label.canary_version_id == rollout.canary_version_id
        and label.canary_weight == rollout.weight
    )


def _abandon(rollout: Rollout, *, now) -> None:
    """The label was moved outside the canary (a move or a rollback on the prompt's page): the canary ends
    without touching the label again, so the watcher never undoes what a person did."""
    rollout.status, rollout.finished_at = RolloutStatus.ROLLED_BACK, now
    rollout.save(update_fields=["status", "finished_at"])
    why = "the label was moved outside the canary; the canary ended without moving it"
    _event(rollout, kind=EventKind.ROLLED_BACK, from_weight=rollout.weight, to_weight=0, actor=WATCHER,
           automatic=True, reason=why)  # fmt: skip


@transaction.atomic
def rollout_evaluate(*, rollout_id: int, now=None) -> str:
    """Look at a running canary once: roll back on harm, else promote when the step's volume and time are
    reached and no guardrail looks worse (its estimate more than halfway to the rollback boundary: not proven
    harmful, but such a step waits for the evidence to settle it); returns "rolled_back", "stepped",
    "promoted" or "watching". Running it twice in a row is harmless: the second look sees the new step
    (volume counted from its start) or a finished canary."""
    rollout = _lock(rollout_id)
    if rollout is None or rollout.status != RolloutStatus.RUNNING:
        return "idle"
    now = now or timezone.now()
    if not _label_matches(rollout):
        _abandon(rollout, now=now)
        return "abandoned"
    report = selectors.guardrails(rollout)
    volume = selectors.step_volume(rollout)
    evidence = {
        "weight": rollout.weight,
        "step_volume": volume,
        "min_volume": rollout.min_volume,
        "alpha": rollout.alpha,
        "test": "mSPRT (always-valid)",
        "guardrails": [g.as_evidence() for g in report],
        "at": now.isoformat(),
    }
    rollout.last_checked_at, rollout.last_evidence = now, evidence
    rollout.save(update_fields=["last_checked_at", "last_evidence"])
    harmful = [g for g in report if g.verdict.harmful]
    waited = now - rollout.step_started_at >= timedelta(minutes=rollout.min_minutes)
    outcome = "watching"
    if harmful:
        names = ", ".join(g.label for g in harmful)
        rollout_rollback(
            rollout_id=rollout.pk,
            actor=WATCHER,
            automatic=True,
            evidence=evidence,
            reason=f"automatic: {names} worse beyond tolerance",
        )
        outcome = "rolled_back"
    elif volume >= rollout.min_volume and waited and not any(g.verdict.looks_worse for g in report):
        rollout = rollout_promote(rollout_id=rollout.pk, actor=WATCHER, automatic=True, evidence=evidence)
        outcome = "promoted" if rollout.status == RolloutStatus.PROMOTED else "stepped"
    RolloutCheck.objects.create(
        rollout_id=rollout_id,
        at=now,
        weight=evidence["weight"],
        canary_calls=max((g.canary_n for g in report), default=0),
        guardrails=evidence["guardrails"],
        outcome=outcome,
    )
    return outcome
