"""Reads for the account page."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from accounts.models import APIToken


def token_list(*, user: User) -> QuerySet[APIToken]:
    """The user's own API tokens (nobody sees another's)."""
    return APIToken.objects.filter(user=user)
