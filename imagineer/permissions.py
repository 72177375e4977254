"""The one permission layer for pages, API and admin.

Roles are Django groups created by a migration (``imagineer/migrations``):

* **viewer**  — browse albums and images, read the API (the ``view_*`` permissions).
* **creator** — also generate, label, scrape, train (:data:`GENERATE`, :data:`LABEL`,
  :data:`SCRAPE`, :data:`TRAIN`) and create/edit/delete *their own* templates and albums.
* **curator** — also edit anything (:data:`CURATE`) and use the admin.
* superusers — everything, including the configuration.

Use :func:`can_act` / :func:`can_edit` (or :func:`ensure_*`) from services and views, the
DRF :class:`RolePermission` on API views, and :func:`role_required` on page views: never
an ad-hoc ``if user.is_staff`` in a view.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

GENERATE = "generation.generate"
LABEL = "labeling.label"
SCRAPE = "albums.scrape"
TRAIN = "training.train"
CURATE = "albums.curate"

VIEWER, CREATOR, CURATOR = "viewer", "creator", "curator"
ROLES = (VIEWER, CREATOR, CURATOR)

# (app_label, model) pairs each role holds permissions on; roles_sync grants exactly these,
# in migrations and after every ``migrate`` (post_migrate), so editing a list needs no migration.
VIEW_MODELS = [
    ("albums", "album"),
    ("albums", "image"),
    ("albums", "albumimage"),
    ("albums", "scrapejob"),
    ("generation", "batchtemplate"),
    ("generation", "batchtemplatelora"),
    ("generation", "batchgenerationrun"),
    ("generation", "generationjob"),
    ("generation", "lora"),
    ("labeling", "label"),
    ("labeling", "labelingjob"),
    ("training", "trainingrun"),
]
# Creators add these and change/delete their own (ownership via ``created_by``, see can_edit).
CREATOR_MODELS = [
    ("generation", "batchtemplate"),
    ("generation", "batchtemplatelora"),
    ("generation", "batchgenerationrun"),
    ("generation", "generationjob"),
    ("albums", "album"),
    ("albums", "scrapejob"),
    ("labeling", "labelingjob"),
]


def _user(user: Any) -> Any:
    return user if user is not None else AnonymousUser()


def is_curator(user: Any) -> bool:
    user = _user(user)
    return bool(user.is_authenticated and (user.is_superuser or user.has_perm(CURATE)))


def can_act(user: Any, permission: str) -> bool:
    """May this user start this kind of work (``GENERATE``, ``LABEL`` ...) or hold this perm?"""
    user = _user(user)
    return bool(user.is_authenticated and user.is_active and user.has_perm(permission))


def user_role(user: Any) -> str | None:
    """The user's role name (the highest, should a user hold several groups), or None."""
    user = _user(user)
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    return next((role for role in reversed(ROLES) if role in names), None)


def public_albums_enabled() -> bool:
    return bool(getattr(settings, "IMAGINEER_PUBLIC_ALBUMS", False))


def _is_public(obj: Model) -> bool:
    """An album marked public, or an image in one (only while IMAGINEER_PUBLIC_ALBUMS is on)."""
    if not public_albums_enabled():
        return False
    meta = obj._meta
    if (meta.app_label, meta.model_name) == ("albums", "album"):
        return bool(getattr(obj, "is_public", False))
    if (meta.app_label, meta.model_name) == ("albums", "image"):
        return obj.albums.filter(is_public=True).exists()
    return False


def can_view(user: Any, obj: Model | None = None) -> bool:
    user = _user(user)
    if not user.is_authenticated:
        return obj is not None and _is_public(obj)
    if not user.is_active:
        return False
    if obj is None:
        return True
    meta = obj._meta
    return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")


def can_edit(user: Any, obj: Model) -> bool:
    """Curators edit anything; others only what they created, if their role may change it."""
    user = _user(user)
    if not user.is_authenticated:
        return False
    if is_curator(user):
        return True
    meta = obj._meta
    owner_id = getattr(obj, "created_by_id", None)
    return owner_id is not None and owner_id == user.pk and user.has_perm(f"{meta.app_label}.change_{meta.model_name}")


def album_queryset_visible(user: Any, queryset: QuerySet) -> QuerySet:
    """Albums (or Images) this user may browse: all when signed in, public ones for anonymous visitors."""
    user = _user(user)
    if user.is_authenticated:
        return queryset
    if not public_albums_enabled():
        return queryset.none()
    if queryset.model._meta.model_name == "image":
        return queryset.filter(albums__is_public=True).distinct()
    return queryset.filter(is_public=True)


def ensure_can_view(user: Any, obj: Model) -> None:
    if not can_view(user, obj):
        raise PermissionDenied("You may not see this.")


def admin_site_has_permission(request: Any) -> bool:
    """The admin is for curators and superusers only (installed on admin.site in imagineer/urls.py).

    Staff status alone is not enough: the admin has no ownership rules, so a creator who was
    made staff by hand must not edit other people's templates and albums there.
    """
    user = request.user
    return bool(user.is_active and user.is_staff and is_curator(user))


def ensure_can_act(user: Any, permission: str) -> None:
    if not can_act(user, permission):
        raise PermissionDenied("Your role does not allow this. Ask a curator for the creator role.")


def ensure_can_edit(user: Any, obj: Model) -> None:
    if not can_edit(user, obj):
        raise PermissionDenied(f"You can only change {obj._meta.verbose_name_plural} that you created.")


class RolePermission(BasePermission):
    """DRF permission: reads need a signed-in user; writes need the view's ``required_permission``
    (a string, or a dict by action/method) and, on objects, ownership or the curator role.

        class GenerateView(APIView):
            required_permission = GENERATE

    A dict entry for a read action or method (``{"list": CURATE}``) is enforced on reads too.
    Views with ``public_albums = True`` also answer anonymous reads while IMAGINEER_PUBLIC_ALBUMS
    is on; they must narrow their queryset with :func:`album_queryset_visible`.
    """

    message = "Your role does not allow this."

    def _required(self, request: Any, view: Any) -> str | None:
        required = getattr(view, "required_permission", None)
        if isinstance(required, dict):
            action = getattr(view, "action", None)
            return required.get(action) or required.get(request.method)
        return required

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return bool(
                request.method in SAFE_METHODS and getattr(view, "public_albums", False) and public_albums_enabled()
            )
        if not user.is_active:
            return False
        if request.method in SAFE_METHODS:
            required = getattr(view, "required_permission", None)
            if isinstance(required, dict):
                explicit = required.get(getattr(view, "action", None)) or required.get(request.method)
                return explicit is None or can_act(user, explicit)
            return True
        required = self._required(request, view)
        return required is None or can_act(user, required)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return can_view(request.user, obj)
        if getattr(view, "object_permission", "edit") == "act":
            return True
        return can_edit(request.user, obj)


def role_required(permission: str | None = None) -> Callable:
    """Page-view decorator: sign-in required (redirect), then ``permission`` if given (403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            from django.contrib.auth.views import redirect_to_login

            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.is_active:
                raise PermissionDenied("This account is disabled.")
            if permission is not None:
                ensure_can_act(request.user, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def public_albums_view(view: Callable) -> Callable:
    """Page-view decorator for album/image browsing: anonymous visitors are let in while
    IMAGINEER_PUBLIC_ALBUMS is on (the view shows them only public albums, via
    :func:`album_queryset_visible` / :func:`can_view`); otherwise they are sent to sign in."""

    @login_not_required
    @wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        from django.contrib.auth.views import redirect_to_login

        if not request.user.is_authenticated and not public_albums_enabled():
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped
