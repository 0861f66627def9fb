from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import ApiKey, ApiKeyScope, Membership, Project, Role
from apps.audit.services import actor_user, audit_record


class AccountError(Exception):
    """A refused change to projects or members; the message is shown to the user."""


@transaction.atomic
def project_create(*, name: str, creator, slug: str = "", description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise AccountError("A project needs a name.")
    slug = slugify(slug or name)[:60]
    if not slug:
        raise AccountError("The project name must contain letters or digits.")
    if Project.objects.filter(slug=slug).exists():
        raise AccountError(f"A project with the address '{slug}' already exists.")
    project = Project.objects.create(name=name, slug=slug, description=description)
    Membership.objects.create(project=project, user=creator, role=Role.ADMIN)
    audit_record(project_id=project.pk, actor=creator, action="project.created", obj=project, after={"name": name})
    audit_record(
        project_id=project.pk,
        actor=creator,
        action="member.added",
        object_type="accounts.membership",
        object_id=str(creator.pk),
        object_repr=creator.get_username(),
        after={"role": Role.ADMIN},
    )
    return project


def _admin_count(project: Project) -> int:
    return Membership.objects.filter(project=project, role=Role.ADMIN).count()


@transaction.atomic
def membership_add(*, project: Project, username: str, role: str, actor) -> Membership:
    if role not in Role.values:
        raise AccountError(f"Unknown role '{role}'.")
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise AccountError(f"No user is called '{username}'.")
    if Membership.objects.filter(project=project, user=user).exists():
        raise AccountError(f"{user.get_username()} is already a member.")
    membership = Membership.objects.create(project=project, user=user, role=role)
    audit_record(
        project_id=project.pk,
        actor=actor,
        action="member.added",
        obj=membership,
        object_repr=user.get_username(),
        after={"role": role},
    )
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor) -> Membership:
    if role not in Role.values:
        raise AccountError(f"Unknown role '{role}'.")
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    before = membership.role
    if before == role:
        return membership
    if before == Role.ADMIN and _admin_count(membership.project) == 1:
        raise AccountError("A project needs at least one admin; make someone else admin first.")
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        project_id=membership.project_id,
        actor=actor,
        action="member.role_changed",
        obj=membership,
        object_repr=membership.user.get_username(),
        before={"role": before},
        after={"role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> list[ApiKey]:
    """Remove a member and revoke the API keys they created in the project; returns the keys revoked.

    A key acts for the project, but its creator chose where it went: a removed
    member's keys must not keep working for them.
    """
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Role.ADMIN and _admin_count(membership.project) == 1:
        raise AccountError("A project needs at least one admin; you cannot remove the last one.")
    username = membership.user.get_username()
    audit_record(
        project_id=membership.project_id,
        actor=actor,
        action="member.removed",
        obj=membership,
        object_repr=username,
        before={"role": membership.role},
    )
    revoked = api_keys_revoke_of_user(
        user=membership.user,
        project=membership.project,
        actor=actor,
        reason=f"{username} was removed from the project",
    )
    membership.delete()
    return revoked


# --- API keys -------------------------------------------------------------------------------------

API_KEY_PREFIX = "ps_"
API_KEY_DISPLAY_LENGTH = 11  # "ps_" and 8 random characters


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, project: Project, name: str, scope: str, actor) -> tuple[ApiKey, str]:
    """Make a key and return it with its full text, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise AccountError("Give the key a name that says where it is used.")
    if scope not in ApiKeyScope.values:
        raise AccountError(f"Unknown scope '{scope}'; use read, write or ingest.")
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        project=project,
        name=name[:100],
        scope=scope,
        prefix=raw_key[:API_KEY_DISPLAY_LENGTH],
        key_hash=api_key_hash(raw_key),
        created_by=actor_user(actor),
    )
    audit_record(
        project_id=project.pk,
        actor=actor,
        action="api_key.created",
        obj=api_key,
        after={"name": api_key.name, "scope": scope, "prefix": api_key.prefix},
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor, reason: str = "") -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise AccountError(f"The key {api_key.prefix}… is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.revoked_reason = reason[:200]
    api_key.save(update_fields=["revoked_at", "revoked_reason"])
    audit_record(
        project_id=api_key.project_id,
        actor=actor,
        action="api_key.revoked",
        obj=api_key,
        before={"name": api_key.name, "scope": api_key.scope, "prefix": api_key.prefix},
        after={"reason": reason} if reason else None,
    )
    return api_key


@transaction.atomic
def api_keys_revoke_of_user(*, user, actor, reason: str, project: Project | None = None) -> list[ApiKey]:
    """Revoke every active key `user` created (in `project`, or everywhere), each audited with the reason."""
    keys = ApiKey.objects.filter(created_by=user, revoked_at__isnull=True)
    if project is not None:
        keys = keys.filter(project=project)
    return [api_key_revoke(api_key=key, actor=actor, reason=reason) for key in keys.order_by("pk")]


def api_key_touch(*, api_key_id: int, every_seconds: int = 60) -> bool:
    """Record that a key was used; at most one write per key and `every_seconds`, so reads stay cheap."""
    now = timezone.now()
    stale = now - timedelta(seconds=every_seconds)
    return (
        ApiKey.objects.filter(pk=api_key_id)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
        .update(last_used_at=now)
        == 1
    )


def api_keys_revoke_on_user_delete(sender, instance, **kwargs) -> None:
    """pre_delete of a user: their active keys in every project are revoked and audited, then the user goes."""
    api_keys_revoke_of_user(user=instance, actor="system", reason=f"{instance.get_username()} was deleted")
