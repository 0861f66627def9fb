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
        from apps.prompts import move_links
        from apps.reviews import evidence

        move_links.register(
            move_links.MoveLink(
                title="Release impact",
                url_name="monitoring:impact",
                applies=lambda move: move.from_version_id is not None and move.to_version_id is not None,
            )
        )
        evidence.register(evidence.EvidenceProvider(title="Release impact in production", collect=_impact_evidence,
                                                    order=80))  # fmt: skip


def _impact_evidence(*, version, review) -> list:
    """On a review page: a link to the impact page of every move of the review's label onto its version."""
    if review is None:
        return []
    from django.urls import reverse

    from apps.prompts.models import LabelMove
    from apps.reviews.evidence import EvidenceItem

    moves = (
        LabelMove.objects.filter(
            prompt_id=version.prompt_id, to_version=version, label_name=review.label_name, from_version__isnull=False
        )
        .select_related("from_version")
        .order_by("-created_at")[:5]
    )
    return [
        EvidenceItem(
            title=f"{move.label_name}: v{move.from_version.number} → v{version.number} on "
            f"{move.created_at:%Y-%m-%d %H:%M} UTC — release impact",
            summary="Error rate, latency, cost and feedback in the hours before and after the move, with "
            "intervals and p-values.",
            url=reverse("monitoring:impact", args=[version.prompt.project.slug, move.pk]),
        )
        for move in moves
    ]


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
