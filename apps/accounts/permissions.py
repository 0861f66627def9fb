"""The one decorator every project page uses: 404 for strangers, 403 for a role too low."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.accounts import selectors
from apps.accounts.models import Role


def project_role_required(role: str = Role.VIEWER):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, project_slug: str, *args, **kwargs):
            membership = selectors.membership_get(user=request.user, project_slug=project_slug)
            if membership is None:
                raise Http404("No such project.")
            if not membership.has_role(role):
                raise PermissionDenied(f"This needs the {role} role in {membership.project.name}.")
            request.project = membership.project
            request.membership = membership
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
