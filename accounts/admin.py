from django.contrib import admin

from accounts.models import APIToken
from imagineer.admin import CuratorModelAdmin


@admin.register(APIToken)
class APITokenAdmin(CuratorModelAdmin):
    """Superusers see and revoke (delete) tokens; keys are never stored, so none can be shown."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    readonly_fields = ["user", "name", "prefix", "key_sha256", "created_at", "last_used_at", "expires_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # created on the account page, where the key can be shown once
