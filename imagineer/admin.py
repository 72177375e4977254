"""The admin site and the ModelAdmin base: both ask imagineer.permissions, as pages and the API do."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

from imagineer import permissions as perms


class ImagineerAdminSite(admin.AdminSite):
    """The default admin site (installed by imagineer.apps.ImagineerAdminConfig)."""

    site_header = "Imagineer curation"
    site_title = "Imagineer admin"
    index_title = "Templates, albums and images"

    def has_permission(self, request: HttpRequest) -> bool:
        return perms.admin_site_has_permission(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """One sign-in page (rate-limited, Google-aware) for the admin too."""
        from accounts.views import admin_login

        return admin_login(request, extra_context)


class CuratorModelAdmin(admin.ModelAdmin):
    """The admin has no ownership rules, so it is for curators (and superusers) only, as far as
    their role's model permissions go (:func:`imagineer.permissions.admin_model_permission`)."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return perms.admin_model_permission(request.user, "view", self.model) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return perms.admin_model_permission(request.user, "add", self.model)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return perms.admin_model_permission(request.user, "change", self.model)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return perms.admin_model_permission(request.user, "delete", self.model)
