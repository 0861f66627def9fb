from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import project_role_required
from apps.prompts import includes
from apps.prompts import selectors as prompt_selectors
from apps.prompts.content import Content, content_of, sample_preview
from apps.prompts.diff import content_diff, text_diff
from apps.reviews import evidence, release_checks, selectors, services
from apps.reviews.forms import DecisionForm, PolicyForm, ReleaseRequestForm, UpdateForm
from apps.reviews.models import ReviewRequest


def _to_detail(review: ReviewRequest) -> HttpResponse:
    return redirect("reviews:detail", project_slug=review.project.slug, pk=review.pk)


@require_GET
@project_role_required(Role.VIEWER)
def inbox(request: HttpRequest) -> HttpResponse:
    project, user = request.project, request.user
    context = {
        "waiting": selectors.inbox_waiting_for_me(project=project, user=user),
        "mine": selectors.inbox_mine(project=project, user=user),
        "decided": selectors.inbox_recently_decided(project=project),
        "protected_labels": selectors.protected_label_names(project=project),
    }
    return render(request, "reviews/inbox.html", context)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.EDITOR)
def request_create(request: HttpRequest, prompt_name: str, number: int) -> HttpResponse:
    prompt = prompt_selectors.prompt_get(project=request.project, name=prompt_name)
    version = prompt_selectors.version_get(prompt=prompt, number=number)
    choices = selectors.project_reviewer_choices(
        project=request.project, exclude_ids={request.user.pk, version.author_id or 0}
    )
    protected = selectors.protected_label_names(project=request.project)
    initial_label = request.GET.get("label") or (protected[0] if protected else "production")
    form = ReleaseRequestForm(request.POST or None, reviewer_choices=choices, initial={"label": initial_label})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            review = services.review_request_create(
                version=version,
                label_name=data["label"],
                description=data["description"],
                reviewer_ids=data["reviewers"],
                actor=request.user,
            )
        except services.ReviewError as exc:
            form.add_error("label", str(exc))
        else:
            messages.success(request, f"Review requested: v{version.number} → {review.label_name}.")
            return _to_detail(review)
    context = {
        "prompt": prompt,
        "version": version,
        "form": form,
        "label_names": sorted(set(protected) | set(prompt_selectors.label_names_in_project(project=request.project))),
        "protected_labels": protected,
        "open_requests": selectors.reviews_for_version(version=version).filter(
            status__in=["open", "changes_requested", "approved"]
        ),
    }
    return render(request, "reviews/request_form.html", context, status=400 if form.errors else 200)


def _detail_context(request: HttpRequest, review: ReviewRequest, **extra: Any) -> dict[str, Any]:
    current = prompt_selectors.version_by_label(prompt=review.prompt, label_name=review.label_name)
    state = selectors.approval_state(review=review)
    can_decide, why_not = selectors.can_approve(review=review, user=request.user, state=state)
    is_editor = request.membership.has_role(Role.EDITOR)
    left = current if current is not None else Content(kind=review.version.kind)
    policy = selectors.policy_for_label(project_id=review.project_id, label_name=review.label_name)
    checks = release_checks.results(review=review, policy=policy)
    checks_block = any(c.blocking and not c.met for c in checks)
    context = {
        "review": review,
        "prompt": review.prompt,
        "version": review.version,
        "current": current,
        "diff": content_diff(left, review.version),
        "left_title": f"{review.label_name} now (v{current.number})"
        if current
        else f"{review.label_name} (not set yet)",
        "right_title": f"v{review.version.number} (requested)",
        "events": selectors.review_events(review=review),
        "chain": selectors.review_chain(review=review),
        "state": state,
        "policy": policy,
        "release_checks": checks,
        "checks_block": checks_block,
        "can_decide": review.is_active and can_decide,
        "already_approved": any(v.who == request.user.get_username() for v in state.approvals),
        "why_not_decide": why_not,
        "can_release": review.is_active and is_editor and state.met and not checks_block,
        "is_requester": review.requested_by_id == request.user.pk,
        "can_withdraw": review.is_active
        and (review.requested_by_id == request.user.pk or request.membership.role == Role.ADMIN),
        "can_comment": is_editor,
        "newer_versions": prompt_selectors.version_list(prompt=review.prompt).filter(number__gt=review.version.number),
        "evidence": (sections := evidence.collect(version=review.version, review=review)),
        "evidence_linked": evidence.anything_linked(sections),
        "decision_form": DecisionForm(),
        "already_released": current is not None and current.pk == review.version_id,
        "dependents": _dependents(review),
        **sample_preview(content_of(review.version)),
    }
    context.update(extra)
    return context


_PREVIEWED_DEPENDENTS = 20  # each is rendered twice; past this many the list is enough to act on


def _dependents(review: ReviewRequest) -> list[dict[str, Any]]:
    """The prompts that include `prompt@label` and would change once re-pinned to the version under review,
    each with how its text rendered with its samples would change."""
    rows = []
    for index, dependent in enumerate(includes.dependents(snippet=review.prompt, label_name=review.label_name)):
        row: dict[str, Any] = {"d": dependent, "changes": dependent.pinned.pk != review.version_id}
        if row["changes"] and index < _PREVIEWED_DEPENDENTS:
            preview = includes.repin_preview(dependent, review.version)
            row["problem"] = preview.problem
            row["text_diff"] = text_diff(preview.before, preview.after) if not preview.problem else []
        rows.append(row)
    return rows


@require_GET
@project_role_required(Role.VIEWER)
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(project=request.project, pk=pk)
    return render(request, "reviews/review_detail.html", _detail_context(request, review))


@require_POST
@project_role_required(Role.EDITOR)
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(project=request.project, pk=pk)
    form = DecisionForm(request.POST)
    if form.is_valid():
        decision, body = form.cleaned_data["decision"], form.cleaned_data["body"]
        try:
            if decision == "approve":
                services.review_approve(
                    review=review,
                    actor=request.user,
                    body=body,
                    acceptable_use_confirmed=request.POST.get("acceptable_use") == "confirmed",
                )
                messages.success(request, f"You approved v{review.version.number}.")
            elif decision == "request_changes":
                services.review_request_changes(review=review, actor=request.user, body=body)
                messages.success(request, "Changes requested; the author was told.")
            else:
                services.review_comment(review=review, actor=request.user, body=body)
        except services.ReviewError as exc:
            form.add_error("body", str(exc))
        else:
            return _to_detail(review)
    review.refresh_from_db()
    context = _detail_context(request, review, decision_form=form)
    return render(request, "reviews/review_detail.html", context, status=400)


@require_POST
@project_role_required(Role.EDITOR)
def review_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(project=request.project, pk=pk)
    try:
        services.review_withdraw(review=review, actor=request.user)
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Request withdrawn.")
    return _to_detail(review)


@require_POST
@project_role_required(Role.EDITOR)
def review_update(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(project=request.project, pk=pk)
    form = UpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the version to put up for review.")
        return _to_detail(review)
    version = prompt_selectors.version_get(prompt=review.prompt, number=form.cleaned_data["version"])
    try:
        new = services.review_update(review=review, version=version, actor=request.user, note=form.cleaned_data["note"])
    except services.ReviewError as exc:
        messages.error(request, str(exc))
        return _to_detail(review)
    messages.success(request, f"Updated to v{version.number}; earlier approvals no longer count.")
    return _to_detail(new)


@require_POST
@project_role_required(Role.EDITOR)
def review_release(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(project=request.project, pk=pk)
    raw = request.POST.get("expected_version", "")
    try:
        expected = int(raw) if raw else None
    except ValueError:
        messages.error(request, "The release form was incomplete; reload the page and try again.")
        return _to_detail(review)
    try:
        label = services.review_release(review=review, actor=request.user, expected_current_version_id=expected)
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Released: {label.name} now points at v{review.version.number}.")
    return _to_detail(review)


@require_GET
@project_role_required(Role.VIEWER)
def policy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/policy_list.html", _policy_context(request, PolicyForm()))


def _policy_context(request: HttpRequest, form: PolicyForm) -> dict[str, Any]:
    return {
        "policies": selectors.policy_list(project=request.project),
        "form": form,
        "label_names": prompt_selectors.label_names_in_project(project=request.project),
    }


@require_POST
@project_role_required(Role.ADMIN)
def policy_save(request: HttpRequest) -> HttpResponse:
    form = PolicyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            policy = services.policy_save(project=request.project, actor=request.user, **data)
        except services.ReviewError as exc:
            form.add_error(None, str(exc))
        else:
            state = "protected" if policy.protected else "not protected"
            messages.success(request, f"Policy saved: {policy.label_name} is {state}.")
            return redirect("reviews:policies", project_slug=request.project.slug)
    return render(request, "reviews/policy_list.html", _policy_context(request, form), status=400)
