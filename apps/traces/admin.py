from django.contrib import admin

from apps.traces.models import IngestBatch, TraceSettings


@admin.register(TraceSettings)
class TraceSettingsAdmin(admin.ModelAdmin):
    list_display = ("project", "retention_days", "pii_mode", "updated_at")


@admin.register(IngestBatch)
class IngestBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "source", "span_count", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "source")
    readonly_fields = [f.name for f in IngestBatch._meta.fields]
