from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    name = "apps.playground"
    label = "playground"
    verbose_name = "Playground"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="Playground", url_name="playground:playground", min_role="editor", order=30))
