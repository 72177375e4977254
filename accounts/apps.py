from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts import signals
        from imagineer.roles import roles_sync_after_migrate

        signals.connect()
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="imagineer.roles_sync")
