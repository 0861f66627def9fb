from __future__ import annotations

from django.contrib import admin

from apps.playground.models import PlaygroundResult, PlaygroundRun


class ResultInline(admin.TabularInline):
    model = PlaygroundResult
    extra = 0
    can_delete = False
    fields = ["endpoint_name", "status", "tokens_in", "tokens_out", "cost", "latency_ms", "error_kind"]
    readonly_fields = fields


@admin.register(PlaygroundRun)
class PlaygroundRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "version", "created_by", "created_at"]
    list_filter = ["project"]
    inlines = [ResultInline]
    readonly_fields = ["project", "version", "content", "variables", "created_by", "created_at"]
