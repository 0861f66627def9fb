from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The embedded default's demo data for every app; installed last, and only with DEBUG on."""

    name = "apps.demo"
    label = "demo"
    verbose_name = "Demo data"
