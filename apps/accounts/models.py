from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


# Each role includes the rights of the roles before it.
ROLE_RANK = {Role.VIEWER: 10, Role.EDITOR: 20, Role.REVIEWER: 30, Role.ADMIN: 40}


class Project(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project")]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"
    INGEST = "ingest", "Read and send traces"


class ApiKey(models.Model):
    """A project's key for the REST API. Only a display prefix and a SHA-256 hash of the key are stored.

    The key is a long random token, so a fast hash is enough: nothing can be
    guessed from it, and checking a presented key costs one SHA-256 and one
    indexed lookup (a slow password hash would cost milliseconds per request).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, shown to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the whole key, hex.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE

    @property
    def can_ingest(self) -> bool:
        return self.scope in (ApiKeyScope.WRITE, ApiKeyScope.INGEST)

    # An API key acts in audit events and services like a user does.
    @property
    def audit_repr(self) -> str:
        return f"api key {self.prefix}… ({self.name})"

    @property
    def audit_user(self):
        return self.created_by
