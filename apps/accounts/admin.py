from django.contrib import admin

from apps.accounts.models import ApiKey, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    # Role changes go through the members page so they are audited.
    readonly_fields = ("user", "role", "created_at")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    inlines = [MembershipInline]

    def has_add_permission(self, request):
        return False  # the studio's "New project" page creates the first admin membership and audits it


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read-only: keys are created and revoked in the studio's API keys page, where it is audited."""

    list_display = ("prefix", "name", "project", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "project__slug")
    readonly_fields = [f.name for f in ApiKey._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
