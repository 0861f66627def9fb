from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For models that change only through the studio's services, where each change is checked and audited:
    the admin lists and shows them, and adds, changes or deletes nothing."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
