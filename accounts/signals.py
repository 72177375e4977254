"""Every user holds a role from the moment it exists, whichever way it was created
(sign-up, Google, the admin, ``createsuperuser``), so "no role" never needs handling."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save


def _user_created(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        from accounts.services import user_default_role_assign

        user_default_role_assign(user=instance)


def connect() -> None:
    post_save.connect(_user_created, sender=get_user_model(), dispatch_uid="accounts.user_default_role")
