"""Writes of reviews and release policies. Each writes its audit event in its transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ROLE_RANK, Project, Role
from apps.accounts.permissions import Forbidden, require_role, role_of
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, PromptVersion, name_validator
from apps.reviews import gate, notifications, release_checks, selectors
from apps.reviews.models import (
    ACTIVE_STATUSES,
    ReleasePolicy,
    ReviewEvent,
    ReviewEventKind,
    ReviewRequest,
    ReviewStatus,
)
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookEvent

MAX_REQUIRED_APPROVALS = 10


class ReviewError(Exception):
    """A refused review action; the message is shown to the user as is."""


class ReleaseConflict(ReviewError):
    """The label moved while the releaser was looking; nothing was released."""


# --- who may do what ---------------------------------------------------------------------------


def _require_person(actor: Any, what: str):
    """Reviews are decisions of people: an API key or a job cannot approve, request or release."""
    user = actor_user(actor)
    if user is None or hasattr(actor, "audit_repr"):
        raise Forbidden(f"{what} needs a signed-in person, not {actor_repr(actor)}.")
    return user


# --- helpers -----------------------------------------------------------------------------------


def _label_name(name: str) -> str:
    name = name.strip()
    try:
        name_validator(name)
    except ValidationError:
        raise ReviewError(
            f"'{name}' is not a valid label name: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit."
        ) from None
    return name


def _event(review: ReviewRequest, kind: str, actor: Any, body: str = "") -> ReviewEvent:
    return ReviewEvent.objects.create(
        review=review,
        kind=kind,
        actor=actor_user(actor),
        actor_repr=actor_repr(actor),
        body=body,
        version=review.version,
        content_hash=review.version.content_hash,
    )


def _audit(review: ReviewRequest, actor: Any, action: str, before: Any = None, after: Any = None) -> None:
    audit_record(
        project_id=review.project_id,
        actor=actor,
        action=action,
        obj=review,
        object_repr=f"review #{review.pk}: {review.prompt.name} v{review.version.number} → {review.label_name}",
        before=before,
        after=after,
    )


def _payload(review: ReviewRequest, actor: Any, **extra: Any) -> dict[str, Any]:
    return {
        "review": review.pk,
        "prompt": review.prompt.name,
        "version": review.version.number,
        "content_hash": review.version.content_hash,
        "label": review.label_name,
        "status": review.status,
        "actor": actor_repr(actor),
        **extra,
    }


def _lock(review: ReviewRequest) -> ReviewRequest:
    return (
        ReviewRequest.objects.select_for_update(of=("self",))
        .select_related("prompt", "version", "project")
        .get(pk=review.pk)
    )


def _require_active(review: ReviewRequest) -> None:
    if not review.is_active:
        raise ReviewError(f"This request is {review.get_status_display().lower()}; nothing more can be done on it.")


def _status_after_decision(review: ReviewRequest) -> str:
    state = selectors.approval_state(review=review)
    if state.changes_requested:
        return ReviewStatus.CHANGES_REQUESTED
    if state.met:
        return ReviewStatus.APPROVED
    return ReviewStatus.OPEN


def _set_status(review: ReviewRequest, status: str) -> None:
    review.status = status
    review.save(update_fields=["status", "updated_at"])


# --- release policies --------------------------------------------------------------------------


@transaction.atomic
def policy_save(
    *,
    project: Project,
    label_name: str,
    protected: bool,
    required_approvals: int,
    approver_roles: list[str],
    actor: Any,
) -> ReleasePolicy:
    """Create or change the policy of one label. Only project admins may."""
    require_role(project_id=project.pk, actor=actor, role=Role.ADMIN, what="Editing a release policy")
    label_name = _label_name(label_name)
    if label_name in prompt_services.RESERVED_LABELS:
        raise ReviewError("'latest' follows the newest version by itself; it cannot have a release policy.")
    if not 1 <= required_approvals <= MAX_REQUIRED_APPROVALS:
        raise ReviewError(f"Required approvals must be between 1 and {MAX_REQUIRED_APPROVALS}.")
    roles = sorted({r for r in approver_roles}, key=lambda r: ROLE_RANK.get(r, 0))
    unknown = [r for r in roles if r not in Role.values]
    if unknown:
        raise ReviewError(f"Unknown role {unknown[0]!r}.")
    if not roles:
        raise ReviewError("Choose at least one role that may approve.")
    if Role.VIEWER in roles:
        raise ReviewError("Viewers cannot approve releases; choose editor, reviewer or admin.")
    policy = ReleasePolicy.objects.select_for_update().filter(project=project, label_name=label_name).first()
    before = policy.as_audit() if policy else None
    if policy is None:
        policy = ReleasePolicy(project=project, label_name=label_name)
    policy.protected = protected
    policy.required_approvals = required_approvals
    policy.approver_roles = roles
    policy.updated_by = actor_user(actor)
    after = policy.as_audit()
    if before == after:
        return policy
    policy.save()
    audit_record(
        project_id=project.pk,
        actor=actor,
        action="policy.created" if before is None else "policy.changed",
        obj=policy,
        object_repr=f"release policy of {label_name}",
        before=before,
        after=after,
    )
    return policy


# --- review requests ---------------------------------------------------------------------------


@transaction.atomic
def review_request_create(
    *,
    version: PromptVersion,
    label_name: str,
    actor: Any,
    description: str = "",
    reviewer_ids: list[int] | None = None,
    supersedes: ReviewRequest | None = None,
) -> ReviewRequest:
    """Ask for `version` to be released under `label_name`; reviewers named, or any eligible one."""
    prompt = version.prompt
    project_id = prompt.project_id
    user = _require_person(actor, "Requesting a release")
    require_role(project_id=project_id, actor=actor, role=Role.EDITOR, what="Requesting a release")
    label_name = _label_name(label_name)
    if label_name in prompt_services.RESERVED_LABELS:
        raise ReviewError("'latest' always follows the newest version; it cannot be released to.")
    current = Label.objects.filter(prompt=prompt, name=label_name).first()
    if current is not None and current.version_id == version.pk:
        raise ReviewError(f"{label_name} already points at v{version.number}.")
    reviewers = list(
        get_user_model().objects.filter(
            pk__in=reviewer_ids or [],
            memberships__project_id=project_id,
            memberships__role__in=[Role.EDITOR, Role.REVIEWER, Role.ADMIN],
        )
    )
    if reviewer_ids and len(reviewers) != len(set(reviewer_ids)):
        raise ReviewError("Choose reviewers among this project's members.")
    if any(r.pk in {user.pk, version.author_id} for r in reviewers):
        raise ReviewError("The author and the requester cannot review their own release; choose someone else.")
    try:
        with transaction.atomic():
            review = ReviewRequest.objects.create(
                project_id=project_id,
                prompt=prompt,
                version=version,
                content_hash=version.content_hash,
                label_name=label_name,
                description=description.strip(),
                requested_by=user,
                requested_by_repr=actor_repr(actor),
                supersedes=supersedes,
            )
    except IntegrityError:
        raise ReviewError(f"v{version.number} already has an open request for {label_name}.") from None
    review.reviewers.set(reviewers)
    _event(review, ReviewEventKind.REQUESTED, actor, review.description)
    _audit(
        review,
        actor,
        "review.requested",
        after={
            "version": version.number,
            "content_hash": version.content_hash,
            "label": label_name,
            "reviewers": [r.get_username() for r in reviewers],
            "supersedes": supersedes.pk if supersedes else None,
        },
    )
    webhooks.emit(project_id=project_id, event=WebhookEvent.REVIEW_REQUESTED, data=_payload(review, actor))
    recipients = reviewers or list(
        selectors.eligible_reviewers(
            project=prompt.project, label_name=label_name, exclude_ids={user.pk, version.author_id or 0}
        )
    )
    notifications.notify(
        review=review,
        recipients=recipients,
        subject=f"Review requested: {prompt.name} v{version.number} → {label_name}",
        text=f"{actor_repr(actor)} asks you to review a release.\n\n{review.description}",
        actor=user,
    )
    return review


def _decide(review: ReviewRequest, actor: Any, kind: str, body: str) -> ReviewRequest:
    user = _require_person(actor, "Reviewing")
    review = _lock(review)
    _require_active(review)
    state = selectors.approval_state(review=review)
    allowed, why = selectors.can_approve(review=review, user=user, state=state)
    if not allowed:
        raise Forbidden(why)
    latest = (
        ReviewEvent.objects.filter(
            review=review,
            actor=user,
            kind__in=[ReviewEventKind.APPROVED, ReviewEventKind.CHANGES_REQUESTED],
            version=review.version,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if kind == ReviewEventKind.APPROVED and latest is not None and latest.kind == kind:
        raise ReviewError(f"You already approved v{review.version.number}.")
    before = review.status
    _event(review, kind, actor, body)
    _set_status(review, _status_after_decision(review))
    action = "review.approved" if kind == ReviewEventKind.APPROVED else "review.changes_requested"
    _audit(
        review,
        actor,
        action,
        before={"status": before},
        after={"status": review.status, "version": review.version.number, "content_hash": review.content_hash},
    )
    event = WebhookEvent.REVIEW_APPROVED if kind == ReviewEventKind.APPROVED else WebhookEvent.CHANGES_REQUESTED
    webhooks.emit(project_id=review.project_id, event=event, data=_payload(review, actor, comment=body))
    verb = "approved" if kind == ReviewEventKind.APPROVED else "requested changes on"
    notifications.notify(
        review=review,
        recipients=[review.requested_by],
        subject=f"{actor_repr(actor)} {verb} {review.prompt.name} v{review.version.number}",
        text=body or f"{actor_repr(actor)} {verb} your release request.",
        actor=user,
    )
    return review


@transaction.atomic
def review_approve(
    *, review: ReviewRequest, actor: Any, body: str = "", acceptable_use_confirmed: bool = False
) -> ReviewRequest:
    """Approve the request's exact version. Never by its author or requester; only by an approver role.

    Where the project has an acceptable-use statement, the approver must confirm it; the confirmation
    (with the statement's hash) is audited with the approval.
    """
    from apps.reviews.models import AcceptableUse

    statement = AcceptableUse.objects.filter(project_id=review.project_id).values_list("statement", flat=True).first()
    if statement and not acceptable_use_confirmed:
        raise ReviewError("Confirm the project's acceptable-use statement to approve.")
    review = _decide(review, actor, ReviewEventKind.APPROVED, body.strip())
    if statement:
        import hashlib

        digest = hashlib.sha256(statement.encode()).hexdigest()
        _audit(review, actor, "review.acceptable_use_confirmed", after={"statement_sha256": digest,
                                                                         "version": review.version.number})  # fmt: skip
    return review


@transaction.atomic
def acceptable_use_save(*, project: Project, statement: str, actor: Any):
    """Set (or, with an empty statement, remove) the project's acceptable-use statement. Admins only; audited."""
    from apps.reviews.models import AcceptableUse

    require_role(project_id=project.pk, actor=actor, role=Role.ADMIN, what="Editing the acceptable-use statement")
    statement = (statement or "").strip()
    if len(statement) > 5000:
        raise ReviewError("An acceptable-use statement has at most 5,000 characters.")
    current = AcceptableUse.objects.filter(project=project).first()
    before = current.statement if current else None
    if not statement:
        AcceptableUse.objects.filter(project=project).delete()
        result = None
    else:
        result, _ = AcceptableUse.objects.update_or_create(
            project=project, defaults={"statement": statement, "updated_by": actor_user(actor)}
        )
    audit_record(project_id=project.pk, actor=actor, action="policy.acceptable_use_changed", obj=project,
                 before={"statement": before}, after={"statement": statement or None})  # fmt: skip
    return result


@transaction.atomic
def review_request_changes(*, review: ReviewRequest, actor: Any, body: str) -> ReviewRequest:
    body = body.strip()
    if not body:
        raise ReviewError("Say what should change: requesting changes needs a comment.")
    return _decide(review, actor, ReviewEventKind.CHANGES_REQUESTED, body)


@transaction.atomic
def review_comment(*, review: ReviewRequest, actor: Any, body: str) -> ReviewEvent:
    body = body.strip()
    if not body:
        raise ReviewError("Write a comment first.")
    require_role(project_id=review.project_id, actor=actor, role=Role.EDITOR, what="Commenting on a review")
    review = _lock(review)
    event = _event(review, ReviewEventKind.COMMENT, actor, body)
    review.save(update_fields=["updated_at"])
    _audit(review, actor, "review.commented", after={"comment": body[:500]})
    notifications.notify(
        review=review,
        recipients=[review.requested_by, *review.reviewers.all()],
        subject=f"{actor_repr(actor)} commented on {review.prompt.name} v{review.version.number}",
        text=body,
        actor=actor_user(actor),
    )
    return event


@transaction.atomic
def review_withdraw(*, review: ReviewRequest, actor: Any) -> ReviewRequest:
    review = _lock(review)
    _require_active(review)
    user = actor_user(actor)
    is_requester = user is not None and user.pk == review.requested_by_id
    if not is_requester and role_of(project_id=review.project_id, actor=actor) != Role.ADMIN:
        raise Forbidden("Only the requester or a project admin can withdraw a request.")
    before = review.status
    _set_status(review, ReviewStatus.WITHDRAWN)
    _event(review, ReviewEventKind.WITHDRAWN, actor)
    _audit(review, actor, "review.withdrawn", before={"status": before}, after={"status": review.status})
    return review


@transaction.atomic
def review_update(*, review: ReviewRequest, version: PromptVersion, actor: Any, note: str = "") -> ReviewRequest:
    """Point the request at a newer version: a new request supersedes this one and starts with no approvals."""
    review = _lock(review)
    _require_active(review)
    user = _require_person(actor, "Updating a request")
    if user.pk != review.requested_by_id:
        raise Forbidden("Only the requester can update a request; ask them, or request a release yourself.")
    if version.prompt_id != review.prompt_id:
        raise ReviewError("That version belongs to another prompt.")
    if version.number <= review.version.number:
        raise ReviewError(f"Choose a version newer than v{review.version.number}.")
    before = review.status
    _set_status(review, ReviewStatus.SUPERSEDED)
    _event(review, ReviewEventKind.UPDATED, actor, f"Superseded by v{version.number}. {note}".strip())
    _audit(
        review,
        actor,
        "review.superseded",
        before={"status": before, "version": review.version.number},
        after={"status": review.status, "version": version.number},
    )
    description = review.description
    if note.strip():
        description = f"{description}\n\nUpdate to v{version.number}: {note.strip()}".strip()
    return review_request_create(
        version=version,
        label_name=review.label_name,
        actor=actor,
        description=description,
        reviewer_ids=list(review.reviewers.values_list("pk", flat=True)),
        supersedes=review,
    )


@transaction.atomic
def review_release(*, review: ReviewRequest, actor: Any, expected_current_version_id: int | None) -> Label:
    """Move the label to the approved version, re-checking the policy under row locks.

    `expected_current_version_id` is the version the label pointed at when the
    releaser looked at the diff (None when the label did not exist). If the label
    moved since, nothing is released and ReleaseConflict says where it points now:
    of two concurrent releases to one label, exactly one wins.
    """
    user = _require_person(actor, "Releasing")
    require_role(project_id=review.project_id, actor=actor, role=Role.EDITOR, what="Releasing")
    # Lock order: policy, review, label. The policy row serializes releases to one label.
    policy = (
        ReleasePolicy.objects.select_for_update()
        .filter(project_id=review.project_id, label_name=review.label_name)
        .first()
    )
    review = _lock(review)
    if review.status == ReviewStatus.RELEASED:
        raise ReviewError(f"Review #{review.pk} was already released.")
    _require_active(review)
    state = selectors.approval_state(review=review, policy=policy)
    if not state.met:
        raise ReviewError(state.blocking_reason())
    unmet = release_checks.blocking(review=review, policy=policy)
    if unmet:
        raise ReviewError(
            "The release policy requires evidence that is not there yet: " + "; ".join(r.title for r in unmet)
        )
    current = (
        Label.objects.select_for_update()
        .select_related("version")
        .filter(prompt=review.prompt, name=review.label_name)
        .first()
    )
    current_id = current.version_id if current else None
    if current_id != expected_current_version_id:
        where = f"v{current.version.number}" if current else "nowhere (it was deleted)"
        raise ReleaseConflict(
            f"{review.label_name} moved to {where} while you were looking; nothing was released. "
            "Reload the review to check the new diff, then release again."
        )
    with gate.releasing(review.pk):
        label = prompt_services.label_move(
            prompt=review.prompt,
            label_name=review.label_name,
            version=review.version,
            actor=actor,
            reason=f"Release of review #{review.pk}",
        )
    before = review.status
    review.status = ReviewStatus.RELEASED
    review.released_at = timezone.now()
    review.released_by_repr = actor_repr(actor)
    review.save(update_fields=["status", "released_at", "released_by_repr", "updated_at"])
    _event(review, ReviewEventKind.RELEASED, actor)
    _audit(
        review,
        actor,
        "review.released",
        before={"status": before, "label_version": current.version.number if current else None},
        after={
            "status": review.status,
            "label_version": review.version.number,
            "content_hash": review.content_hash,
            "approvals": [v.who for v in state.approvals],
        },
    )
    webhooks.emit(
        project_id=review.project_id,
        event=WebhookEvent.RELEASED,
        data=_payload(
            review,
            actor,
            from_version=current.version.number if current else None,
            approvals=[v.who for v in state.approvals],
        ),
    )
    notifications.notify(
        review=review,
        recipients=[review.requested_by, *review.reviewers.all()],
        subject=f"Released: {review.prompt.name} v{review.version.number} → {review.label_name}",
        text=f"{actor_repr(actor)} released it.",
        actor=user,
    )
    return label


def open_requests_for_label(*, review: ReviewRequest) -> list[ReviewRequest]:
    return list(
        ReviewRequest.objects.filter(
            prompt=review.prompt, label_name=review.label_name, status__in=ACTIVE_STATUSES
        ).exclude(pk=review.pk)
    )
