from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "apps.traces"
    label = "traces"
    verbose_name = "Production traces and feedback"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="Traces", url_name="traces:list", min_role="viewer", order=38))
