from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.reviews.models import ReleasePolicy, ReviewEvent, ReviewRequest


@admin.register(ReleasePolicy)
class ReleasePolicyAdmin(ReadOnlyAdmin):
    list_display = ("label_name", "project", "protected", "required_approvals", "approver_roles", "updated_at")
    list_filter = ("project", "protected")


@admin.register(ReviewRequest)
class ReviewRequestAdmin(ReadOnlyAdmin):
    list_display = ("pk", "project", "prompt", "version", "label_name", "status", "requested_by_repr", "updated_at")
    list_filter = ("status", "project")


@admin.register(ReviewEvent)
class ReviewEventAdmin(ReadOnlyAdmin):
    list_display = ("review", "kind", "actor_repr", "version", "created_at")
