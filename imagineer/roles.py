"""Role groups and their permissions (see imagineer.permissions for what each role may do)."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.models import User
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


def roles_sync(apps: Any = global_apps, *, permissions_create: bool = True) -> None:
    """Create the role groups and give each exactly its permissions (idempotent; used by migrations)."""
    from django.contrib.auth.management import create_permissions

    if permissions_create:
        # Permissions are normally created after all migrations; roles need them now. Migration
        # state apps have no models module, which create_permissions takes for "no models".
        for app_config in apps.get_app_configs():
            original = getattr(app_config, "models_module", None)
            app_config.models_module = original or True
            try:
                create_permissions(app_config, verbosity=0, apps=apps)
            finally:
                app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = {role: role_permission_names(role) for role in perms.ROLES}
    every = set().union(*wanted.values())
    candidates = Permission.objects.filter(
        content_type__app_label__in={name.split(".", 1)[0] for name in every},
        codename__in={name.split(".", 1)[1] for name in every},
    ).select_related("content_type")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in candidates}
    for role, names in wanted.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([by_name[name] for name in names if name in by_name])


@transaction.atomic
def user_set_role(*, user: User, role: str) -> None:
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


def roles_sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver: every ``migrate`` (and every test-database flush, which deletes the
    groups the roles migration made) leaves the role groups exactly as the code defines them, so
    a permission added to a role list in imagineer.permissions needs no migration of its own.

    post_migrate is sent once per app with models, in INSTALLED_APPS order; acting on the last
    one, every app's permissions already exist (Django's own receiver made them).
    """
    last = [config for config in global_apps.get_app_configs() if config.models_module is not None][-1]
    if sender.label == last.label:
        roles_sync(permissions_create=False)
