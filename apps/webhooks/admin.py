from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.webhooks.models import Webhook, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ("url", "project", "active", "created_at")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event", "webhook", "status", "attempts", "response_code", "created_at")
    list_filter = ("status", "event")
