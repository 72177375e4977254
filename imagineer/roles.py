"""Role groups and their permissions (see imagineer.permissions for what each role may do)."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db import transaction

from imagineer import permissions as perms

ROLE_EXTRA_PERMISSIONS = {
    perms.VIEWER: [],
    perms.CREATOR: [perms.GENERATE, perms.LABEL, perms.SCRAPE, perms.TRAIN],
    perms.CURATOR: [perms.GENERATE, perms.LABEL, perms.SCRAPE, perms.TRAIN, perms.CURATE],
}


def role_permission_names(role: str) -> set[str]:
    """Every ``app_label.codename`` the role holds."""
    names = {f"{app}.view_{model}" for app, model in perms.VIEW_MODELS}
    if role in (perms.CREATOR, perms.CURATOR):
        models = perms.CREATOR_MODELS if role == perms.CREATOR else perms.VIEW_MODELS
        names |= {f"{app}.{action}_{model}" for app, model in models for action in ("add", "change", "delete")}
    names |= set(ROLE_EXTRA_PERMISSIONS[role])
    return names


def roles_sync(apps: Any = global_apps) -> None:
    """Create the role groups and give each exactly its permissions (idempotent; used by migrations)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in perms.ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = role_permission_names(role)
        found = []
        for name in wanted:
            app_label, codename = name.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                found.append(permission)
        group.permissions.set(found)


@transaction.atomic
def user_set_role(*, user: Any, role: str) -> None:
    """Put the user in exactly one role group; curators may use the admin."""
    from django.contrib.auth.models import Group

    if role not in perms.ROLES:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(perms.ROLES)}.")
    user.groups.remove(*Group.objects.filter(name__in=perms.ROLES))
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role == perms.CURATOR or user.is_superuser
    user.save(update_fields=["is_staff"])
    for cache in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)
