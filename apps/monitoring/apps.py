from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: rollups, dashboards, drift and alerts"

    def ready(self) -> None:
        from apps.core import nav
        from apps.monitoring import online, rollups
        from apps.prompts import page_panels
        from apps.traces import hooks

        hooks.register("monitoring.rollups", rollups.on_written)
        hooks.register("monitoring.online", online.on_written)
        nav.register(nav.NavEntry(title="Monitoring", url_name="monitoring:dashboard", min_role="viewer", order=36))
        page_panels.register(
            page_panels.PromptPanel(template_name="monitoring/_prompt_releases.html", context=_panel, order=30)
        )


def _panel(prompt) -> dict:
    """The prompt page's monitoring panel: its dashboard, open alerts, and the impact of its recent label moves."""
    from apps.monitoring.models import Alert, AlertStatus
    from apps.prompts.models import LabelMove

    moves = (
        LabelMove.objects.filter(prompt=prompt, from_version__isnull=False, to_version__isnull=False)
        .select_related("from_version", "to_version")
        .order_by("-created_at")[:5]
    )
    open_alerts = Alert.objects.filter(rule__prompt=prompt).exclude(status=AlertStatus.RESOLVED).count()
    return {"prompt": prompt, "moves": list(moves), "open_alerts": open_alerts}
