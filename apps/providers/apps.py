from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"
    verbose_name = "Model endpoints"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="Models", url_name="providers:endpoints", min_role="viewer", order=60))
