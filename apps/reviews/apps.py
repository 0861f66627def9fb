from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "apps.reviews"
    label = "reviews"
    verbose_name = "Reviews and releases"

    def ready(self) -> None:
        from apps.core import nav
        from apps.prompts import services as prompt_services
        from apps.prompts import version_actions
        from apps.reviews import gate

        # Every label move and delete, from any path, passes through this guard.
        prompt_services.register_label_move_guard(gate.release_gate)
        version_actions.register(
            version_actions.VersionAction(title="Request release", url_name="reviews:request", min_role="editor")
        )
        nav.register(nav.NavEntry(title="Reviews", url_name="reviews:inbox", min_role="viewer", order=30))
