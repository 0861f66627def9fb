"""The release gate: the one guard every label move and delete in the studio passes through.

`apps.prompts.services.label_move` / `label_delete` call `release_gate` inside
their transaction, after locking the label row, for every caller: the studio
pages, the REST API with an API key, a management command, a shell. A label
whose policy is protected moves only

1. inside `services.review_release`, which marks the move with the review it
   releases (a context variable); the gate then re-reads that review under a
   row lock and re-counts its approvals against the policy, so even a forged
   marker can only move the label to an approved version; or
2. back to a version that an approved review released under the same label
   before (a rollback), which is audited as such.

Before either, the content hash of the version is recomputed from its row as
stored now and must equal the hash it was saved and reviewed with.

Everything else is refused with `LabelMoveRefused`, whoever asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from apps.audit.services import actor_repr, audit_record
from apps.prompts.content import content_of
from apps.prompts.models import PromptVersion
from apps.prompts.services import LabelMoveAttempt, LabelMoveRefused
from apps.reviews import selectors
from apps.reviews.models import ReviewRequest, ReviewStatus
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookEvent

_releasing: ContextVar[int | None] = ContextVar("reviews_releasing", default=None)


@contextmanager
def releasing(review_id: int) -> Iterator[None]:
    token = _releasing.set(review_id)
    try:
        yield
    finally:
        _releasing.reset(token)


def release_gate(attempt: LabelMoveAttempt) -> None:
    policy = selectors.protected_policy(project_id=attempt.prompt.project_id, label_name=attempt.label_name)
    if policy is None:
        return
    label = attempt.label_name
    if attempt.to_version is None:
        raise LabelMoveRefused(
            f"{label} is protected by a release policy and cannot be deleted. "
            "A project admin can unprotect it under Reviews → Release policies first.",
            code="label_protected",
        )
    # A canary is vetted like a release: every version the move gives traffic (a new stable version, or a
    # canary arm whose weight grows) needs the approved review; going back to the stable arm needs none.
    for version in attempt.versions_gaining():
        _vet(attempt, version, policy)


def _vet(attempt: LabelMoveAttempt, version: PromptVersion, policy) -> None:
    label = attempt.label_name
    _check_content(version)
    review_id = _releasing.get()
    if review_id is not None:
        _check_release(attempt, version, review_id, policy)
        return
    released_by = selectors.was_released(prompt=attempt.prompt, label_name=label, version=version)
    if released_by is not None:
        _record_rollback(attempt, version, released_by)
        return
    what = "a canary of " if version == attempt.canary_version else ""
    raise LabelMoveRefused(
        f"{label} is protected: a review is required. It moves (or takes {what}a version) only to a version "
        f"approved through a review request — open v{version.number} and press “Request release”. "
        f"Only a rollback to a version released under {label} before is allowed without one."
    )


def _check_content(version: PromptVersion) -> None:
    """Recompute the hash of what is about to be released from the row as the database holds it now.

    The database refuses to change a version, but its owner can lift a trigger; a
    version whose content no longer matches the hash it was saved (and reviewed)
    with is never released.
    """
    stored = PromptVersion.objects.filter(pk=version.pk).first()
    actual = content_of(stored).hash() if stored is not None else None
    if actual is None or actual != stored.content_hash or actual != version.content_hash:
        raise LabelMoveRefused(
            f"v{version.number} no longer matches the content it was saved and reviewed with "
            "(its content hash differs); it was changed outside the studio and cannot be released."
        )


def _check_release(attempt: LabelMoveAttempt, version: PromptVersion, review_id: int, policy) -> None:
    review = (
        ReviewRequest.objects.select_for_update(of=("self",)).select_related("version").filter(pk=review_id).first()
    )
    matches = (
        review is not None
        and review.status in (ReviewStatus.OPEN, ReviewStatus.APPROVED)
        and review.prompt_id == attempt.prompt.pk
        and review.label_name == attempt.label_name
        and review.version_id == version.pk
        and review.content_hash == version.content_hash
    )
    if not matches:
        raise LabelMoveRefused(f"{attempt.label_name} is protected: this move is not the release of its review.")
    state = selectors.approval_state(review=review, policy=policy)
    if not state.met:
        raise LabelMoveRefused(f"{attempt.label_name} is protected: {state.blocking_reason()}")


def _record_rollback(attempt: LabelMoveAttempt, version: PromptVersion, released_by: ReviewRequest) -> None:
    before = {"version": attempt.from_version.number} if attempt.from_version else None
    after = {
        "version": version.number,
        "content_hash": version.content_hash,
        "released_by_review": released_by.pk,
    }
    audit_record(
        project_id=attempt.prompt.project_id,
        actor=attempt.actor,
        action="release.rolled_back",
        object_type="prompts.label",
        object_id=f"{attempt.prompt.pk}:{attempt.label_name}",
        object_repr=f"{attempt.prompt.name}@{attempt.label_name}",
        before=before,
        after=after,
    )
    webhooks.emit(
        project_id=attempt.prompt.project_id,
        event=WebhookEvent.ROLLED_BACK,
        data={
            "prompt": attempt.prompt.name,
            "label": attempt.label_name,
            "from_version": attempt.from_version.number if attempt.from_version else None,
            "to_version": version.number,
            "released_by_review": released_by.pk,
            "actor": actor_repr(attempt.actor),
        },
    )
