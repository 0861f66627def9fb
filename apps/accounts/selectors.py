from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import ApiKey, Membership, Project


def project_list_for_user(*, user) -> list[Project]:
    if not user.is_authenticated:
        return []
    return list(Project.objects.filter(memberships__user=user).order_by("name"))


def membership_get(*, user, project_slug: str) -> Membership | None:
    """The user's membership of the project, or None (the caller answers 404 then)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("project").filter(user=user, project__slug=project_slug).first()


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def project_members_with_role(*, project: Project, roles: list[str]) -> QuerySet[Membership]:
    return membership_list(project=project).filter(role__in=roles)


def api_key_list(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).select_related("created_by").order_by("revoked_at", "-created_at")


def api_key_get_by_hash(*, key_hash: str) -> ApiKey | None:
    """The key with this hash, revoked or not (the caller tells the two apart); one lookup on a unique index."""
    return ApiKey.objects.select_related("project", "created_by").filter(key_hash=key_hash).first()


def api_key_get_active(*, pk: int) -> ApiKey | None:
    """A key that is not revoked, with its project and creator, to act as the actor of a write."""
    return ApiKey.objects.select_related("project", "created_by").filter(pk=pk, revoked_at__isnull=True).first()
