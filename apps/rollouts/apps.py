from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.rollouts"
    verbose_name = "Canary releases"

    def ready(self) -> None:
        from apps.prompts import version_actions

        version_actions.register(
            version_actions.VersionAction(
                title="Start a canary",
                url_name="rollouts:new",
                min_role="editor",
                order=60,
                css="btn btn-outline-secondary",
            )  # fmt: skip
        )
