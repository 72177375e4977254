from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from imagineer.permissions import ROLES
from imagineer.roles import user_set_role


class Command(BaseCommand):
    help = "Give a user a role (viewer, creator or curator); curators may use the admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="username or email address")
        parser.add_argument("role", choices=ROLES, help="viewer (browse), creator (also make things) or curator.")

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first() or User.objects.filter(email__iexact=username).first()
        if user is None:
            raise CommandError(f"No user with username or email {username!r}.")
        user_set_role(user=user, role=role)
        self.stdout.write(f"{user.get_username()} is now a {role}.")
