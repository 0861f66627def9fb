from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Projects and members"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="API keys", url_name="accounts:api_keys", min_role="admin", order=90))
