from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.prompts.models import Label, LabelMove, Prompt, PromptVersion


@admin.register(Prompt)
class PromptAdmin(ReadOnlyAdmin):
    list_display = ("name", "project", "updated_at")
    list_filter = ("project",)
    search_fields = ("name", "description")


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "number", "kind", "author_repr", "created_at")
    list_filter = ("kind",)


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "name", "version", "updated_at")


@admin.register(LabelMove)
class LabelMoveAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "label_name", "action", "from_version", "to_version", "actor_repr", "created_at")
