from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ImagineerConfig(AppConfig):
    name = "imagineer"
    verbose_name = "Imagineer"


class ImagineerAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, whose default site asks imagineer.permissions who may use it."""

    default = False  # named in INSTALLED_APPS; ImagineerConfig stays this app's own config
    default_site = "imagineer.admin.ImagineerAdminSite"
