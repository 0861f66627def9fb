"""Who may do what in a project: the one role check every app's services use, its one `Forbidden` error, and
the one decorator every project page uses (404 for strangers, 403 for a role too low)."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.accounts import selectors
from apps.accounts.models import ROLE_RANK, Membership, Role
from apps.audit.services import actor_repr, actor_user


class Forbidden(PermissionDenied):
    """The actor's role does not allow this action; the message names who, what and the role it needs.

    A PermissionDenied, so a page answers 403 and the REST API 403 without catching it.
    """


def role_of(*, project_id: int, actor: Any) -> str | None:
    """The role of the person behind `actor` (a user, or an API key's creator) in the project; None if none."""
    user = actor_user(actor)
    if user is None or not getattr(user, "pk", None):
        return None
    return Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()


def require_role(*, project_id: int, actor: Any, role: str, what: str) -> str:
    """The actor's role in the project when it is at least `role`; otherwise Forbidden, naming what needs it."""
    held = role_of(project_id=project_id, actor=actor)
    if held is None:
        raise Forbidden(f"{actor_repr(actor)} is not a member of this project.")
    if ROLE_RANK[Role(held)] < ROLE_RANK[Role(role)]:
        raise Forbidden(f"{what} needs the {role} role; {actor_repr(actor)} is {held}.")
    return held


def project_role_required(role: str = Role.VIEWER):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, project_slug: str, *args, **kwargs):
            membership = selectors.membership_get(user=request.user, project_slug=project_slug)
            if membership is None:
                raise Http404("No such project.")
            if not membership.has_role(role):
                raise Forbidden(f"This needs the {role} role in {membership.project.name}.")
            request.project = membership.project
            request.membership = membership
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
