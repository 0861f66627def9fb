from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.datasets.models import Dataset, DatasetVersion, ImportJob


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "project", "updated_at")
    list_filter = ("project",)
    search_fields = ("name", "description")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "number", "row_count", "source", "author_repr", "created_at")
    list_filter = ("source",)


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("filename", "project", "status", "created_by", "created_at")
    list_filter = ("status",)
