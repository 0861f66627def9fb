"""Reads of reviews and policies. Every read is scoped to a project."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Membership, Project, Role
from apps.prompts.models import Prompt, PromptVersion
from apps.reviews.models import (
    ACTIVE_STATUSES,
    ReleasePolicy,
    ReviewEvent,
    ReviewEventKind,
    ReviewRequest,
    ReviewStatus,
    default_approver_roles,
)

DEFAULT_REQUIRED_APPROVALS = 1


def policy_list(*, project: Project) -> QuerySet[ReleasePolicy]:
    return ReleasePolicy.objects.filter(project=project).order_by("label_name")


def policy_for_label(*, project_id: int, label_name: str) -> ReleasePolicy | None:
    return ReleasePolicy.objects.filter(project_id=project_id, label_name=label_name).first()


def protected_policy(*, project_id: int, label_name: str) -> ReleasePolicy | None:
    return ReleasePolicy.objects.filter(project_id=project_id, label_name=label_name, protected=True).first()


def protected_label_names(*, project: Project) -> list[str]:
    return list(policy_list(project=project).filter(protected=True).values_list("label_name", flat=True))


@dataclass
class Vote:
    who: str
    when: dt.datetime
    note: str = ""


@dataclass
class ApprovalState:
    """Where a review stands against its label's policy, counted from the decisions on its exact version."""

    required: int
    approver_roles: list[str]
    protected: bool
    approvals: list[Vote] = field(default_factory=list)
    changes_requested: list[Vote] = field(default_factory=list)
    ignored: list[Vote] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return len(self.approvals) >= self.required and not self.changes_requested

    @property
    def missing(self) -> int:
        return max(self.required - len(self.approvals), 0)

    def blocking_reason(self) -> str:
        if self.changes_requested:
            names = ", ".join(v.who for v in self.changes_requested)
            return f"Changes were requested by {names}; update the request or get their approval before releasing."
        return (
            f"The policy needs {self.required} approval{'s' if self.required != 1 else ''} "
            f"from {' or '.join(self.approver_roles)}s other than the author; it has {len(self.approvals)}."
        )


def _roles_by_user(project_id: int) -> dict[int, str]:
    return dict(Membership.objects.filter(project_id=project_id).values_list("user_id", "role"))


def approval_state(*, review: ReviewRequest, policy: ReleasePolicy | None = None) -> ApprovalState:
    """Count each reviewer's latest decision on this exact version and content hash.

    An approval counts only if it was given on the request's version with the
    same content hash, by a member who still holds an approver role and who is
    neither the version's author nor the requester.
    """
    if policy is None:
        policy = policy_for_label(project_id=review.project_id, label_name=review.label_name)
    protected = bool(policy and policy.protected)
    required = policy.required_approvals if protected else DEFAULT_REQUIRED_APPROVALS
    roles = list(policy.approver_roles) if protected else default_approver_roles()
    state = ApprovalState(required=required, approver_roles=roles, protected=protected)
    member_roles = _roles_by_user(review.project_id)
    excluded = {review.version.author_id, review.requested_by_id} - {None}
    latest: dict[int | None, ReviewEvent] = {}
    decisions = ReviewEvent.objects.filter(
        review=review, kind__in=[ReviewEventKind.APPROVED, ReviewEventKind.CHANGES_REQUESTED]
    ).order_by("created_at", "id")
    for event in decisions:
        if event.version_id != review.version_id or event.content_hash != review.version.content_hash:
            state.ignored.append(Vote(event.actor_repr, event.created_at, "decided on another version"))
            continue
        latest[event.actor_id] = event
    for actor_id, event in latest.items():
        vote = Vote(event.actor_repr, event.created_at)
        if actor_id is None or actor_id in excluded:
            vote.note = "the author or requester cannot approve"
            state.ignored.append(vote)
        elif member_roles.get(actor_id) not in roles:
            vote.note = "no longer holds an approver role"
            state.ignored.append(vote)
        elif event.kind == ReviewEventKind.APPROVED:
            state.approvals.append(vote)
        else:
            state.changes_requested.append(vote)
    return state


def can_approve(*, review: ReviewRequest, user, state: ApprovalState | None = None) -> tuple[bool, str]:
    """Whether `user` may approve or request changes, and why not."""
    state = state or approval_state(review=review)
    if user.pk in {review.version.author_id, review.requested_by_id}:
        return False, "You wrote this version or asked for its release; someone else has to review it."
    role = _roles_by_user(review.project_id).get(user.pk)
    if role not in state.approver_roles:
        return False, f"Only {' and '.join(state.approver_roles)}s may approve releases to {review.label_name}."
    return True, ""


def eligible_reviewers(*, project: Project, label_name: str, exclude_ids: set[int]) -> QuerySet:
    policy = protected_policy(project_id=project.pk, label_name=label_name)
    roles = list(policy.approver_roles) if policy else default_approver_roles()
    return (
        get_user_model()
        .objects.filter(memberships__project=project, memberships__role__in=roles)
        .exclude(pk__in=exclude_ids)
        .order_by("username")
    )


def project_reviewer_choices(*, project: Project, exclude_ids: set[int]) -> QuerySet:
    """Members who could approve some release (reviewers and admins), for the request form."""
    return (
        get_user_model()
        .objects.filter(memberships__project=project, memberships__role__in=[Role.REVIEWER, Role.ADMIN])
        .exclude(pk__in=exclude_ids)
        .order_by("username")
    )


def review_get(*, project: Project, pk: int, for_update: bool = False) -> ReviewRequest:
    reviews = ReviewRequest.objects.select_related("prompt", "version", "version__prompt", "project")
    if for_update:
        reviews = reviews.select_for_update(of=("self",))
    review = reviews.filter(project=project, pk=pk).first()
    if review is None:
        raise Http404("No such review request in this project.")
    return review


def review_events(*, review: ReviewRequest) -> QuerySet[ReviewEvent]:
    return ReviewEvent.objects.filter(review=review).select_related("version").order_by("created_at", "id")


def review_chain(*, review: ReviewRequest) -> list[ReviewRequest]:
    """The requests this one superseded, newest first (their conversations stay readable)."""
    chain, current = [], review.supersedes
    while current is not None and len(chain) < 50:
        chain.append(current)
        current = current.supersedes
    return chain


def _base() -> QuerySet[ReviewRequest]:
    return ReviewRequest.objects.select_related("prompt", "version").prefetch_related("reviewers")


def inbox_waiting_for_me(*, project: Project, user) -> list[ReviewRequest]:
    """Open requests the user may decide on and has not decided on yet; requests naming them come first."""
    role = _roles_by_user(project.pk).get(user.pk)
    policies = {p.label_name: p for p in policy_list(project=project).filter(protected=True)}
    decided = set(
        ReviewEvent.objects.filter(
            review__project=project,
            actor=user,
            kind__in=[ReviewEventKind.APPROVED, ReviewEventKind.CHANGES_REQUESTED],
        ).values_list("review_id", flat=True)
    )
    waiting = []
    candidates = _base().filter(project=project, status__in=[ReviewStatus.OPEN, ReviewStatus.CHANGES_REQUESTED])
    for review in candidates.exclude(requested_by=user).exclude(version__author=user):
        policy = policies.get(review.label_name)
        roles = policy.approver_roles if policy else default_approver_roles()
        if role in roles and review.pk not in decided:
            waiting.append(review)
    waiting.sort(key=lambda r: (user not in r.reviewers.all(), r.created_at))
    return waiting


def inbox_mine(*, project: Project, user) -> QuerySet[ReviewRequest]:
    return _base().filter(project=project, requested_by=user, status__in=ACTIVE_STATUSES).order_by("-updated_at")


def inbox_recently_decided(*, project: Project, days: int = 30, limit: int = 20) -> QuerySet[ReviewRequest]:
    since = timezone.now() - dt.timedelta(days=days)
    decided = [ReviewStatus.APPROVED, ReviewStatus.CHANGES_REQUESTED, ReviewStatus.RELEASED, ReviewStatus.WITHDRAWN]
    return _base().filter(project=project, status__in=decided, updated_at__gte=since).order_by("-updated_at")[:limit]


def reviews_for_version(*, version: PromptVersion) -> QuerySet[ReviewRequest]:
    return ReviewRequest.objects.filter(version=version).order_by("-created_at")


def was_released(*, prompt: Prompt, label_name: str, version: PromptVersion) -> ReviewRequest | None:
    """The approved review that released this exact version under this label before, if any."""
    return (
        ReviewRequest.objects.filter(
            prompt=prompt,
            label_name=label_name,
            version=version,
            content_hash=version.content_hash,
            status=ReviewStatus.RELEASED,
        )
        .order_by("-released_at")
        .first()
    )


def reviews_matching(*, project: Project, query: str = "") -> QuerySet[ReviewRequest]:
    reviews = _base().filter(project=project)
    if query:
        reviews = reviews.filter(Q(prompt__name__icontains=query) | Q(label_name__icontains=query))
    return reviews.order_by("-updated_at")
