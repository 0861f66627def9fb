from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Projects and members"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="API keys", url_name="accounts:api_keys", min_role="admin", order=90))

        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from apps.accounts.services import api_keys_revoke_on_user_delete

        # Deleting a user (admin, shell) removes their memberships by cascade, past membership_remove:
        # revoke their keys here too, audited, before created_by is cleared.
        pre_delete.connect(api_keys_revoke_on_user_delete, sender=get_user_model(), dispatch_uid="revoke-keys")
