"""Account workflows: API tokens, the sign-up allow-list and the default role."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import APIToken
from imagineer.errors import ApplicationError

KEY_START = "imt_"
PREFIX_LENGTH = 12  # "imt_" + 8 random characters: 48 bits, enough to find the row
TOKEN_NAME_MAX = 100
TOKEN_LIMIT_PER_USER = 50
# Writing last_used_at on every request would turn every API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str, expires_in_days: int | None = None) -> tuple[APIToken, str]:
    """Create a token; returns the row and the key, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name, e.g. “laptop script”.", fields={"name": ["Required."]})
    if len(name) > TOKEN_NAME_MAX:
        message = f"Token names are at most {TOKEN_NAME_MAX} characters."
        raise ApplicationError(message, fields={"name": [message]})
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        message = "A token expires after 1 to 3650 days, or never."
        raise ApplicationError(message, fields={"expires_in_days": [message]})
    if APIToken.objects.filter(user=user).count() >= TOKEN_LIMIT_PER_USER:
        raise ApplicationError(f"You already have {TOKEN_LIMIT_PER_USER} tokens; revoke one you no longer use.")
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    for _attempt in range(5):  # a prefix collision is a 1 in 2**48 event; retry rather than fail
        key = KEY_START + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                token = APIToken.objects.create(
                    user=user, name=name, prefix=key[:PREFIX_LENGTH], key_sha256=_key_hash(key), expires_at=expires_at
                )
        except IntegrityError:
            continue
        return token, key
    raise RuntimeError("Could not allocate a unique token prefix.")


@transaction.atomic
def token_revoke(*, user: User, token_id: int) -> None:
    """Delete one of the user's tokens: the next request that presents it is refused."""
    deleted, _ = APIToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise ApplicationError("No such token on your account (it may already be revoked).")


def token_authenticate(*, key: str) -> tuple[User, APIToken] | None:
    """The (user, token) for a presented key, or None when it is unknown, expired or its user inactive."""
    key = key.strip()
    if not key.startswith(KEY_START) or len(key) <= PREFIX_LENGTH:
        return None
    token = APIToken.objects.select_related("user").filter(prefix=key[:PREFIX_LENGTH]).first()
    if token is None or not secrets.compare_digest(token.key_sha256, _key_hash(key)):
        return None
    if token.is_expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        APIToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


def email_refusal_reason(email: str | None) -> str | None:
    """Why this address may not sign up, or None when the allow-list admits it (or there is none)."""
    domains = {d.lower().lstrip("@") for d in settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS}
    addresses = {a.lower() for a in settings.IMAGINEER_ALLOWED_EMAILS}
    if not domains and not addresses:
        return None
    if not email:
        return "This site admits only listed email addresses, and your account did not share one."
    email = email.strip().lower()
    if email in addresses or email.rpartition("@")[2] in domains:
        return None
    return (
        f"{email} is not on this site's list of allowed accounts. "
        "Ask the site's administrator to add your address or domain."
    )


def user_default_role_assign(*, user: User) -> None:
    """Give a newly created user the sign-up role (IMAGINEER_DEFAULT_ROLE) unless they already have one."""
    from django.contrib.auth.models import Group

    from imagineer.permissions import CURATOR, ROLES

    if user.groups.filter(name__in=ROLES).exists():
        return
    role = settings.IMAGINEER_DEFAULT_ROLE
    group = Group.objects.filter(name=role).first()
    if group is None:  # absent only while the roles migration has not run yet
        return
    user.groups.add(group)
    if role == CURATOR and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    for cache in ("_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
