from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: rollups, dashboards, drift and alerts"

    def ready(self) -> None:
        from apps.core import nav
        from apps.monitoring import rollups
        from apps.traces import hooks

        hooks.register("monitoring.rollups", rollups.on_written)
        nav.register(nav.NavEntry(title="Monitoring", url_name="monitoring:dashboard", min_role="viewer", order=36))
