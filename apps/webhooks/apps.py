from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from apps.prompts import services as prompt_services
        from apps.webhooks import services

        prompt_services.register_version_saved_hook(services.on_version_saved)
