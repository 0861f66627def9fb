from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self) -> None:
        from apps.core.nav import NavEntry, register

        register(NavEntry(title="Datasets", url_name="datasets:list", order=20))
