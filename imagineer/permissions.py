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

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from rest_framework.permissions import SAFE_METHODS, BasePermission

GENERATE = "generation.generate"
LABEL = "labeling.label"
SCRAPE = "albums.scrape"
TRAIN = "training.train"
CURATE = "albums.curate"

VIEWER, CREATOR, CURATOR = "viewer", "creator", "curator"
ROLES = (VIEWER, CREATOR, CURATOR)

# (app_label, codename) pairs each role holds; the roles migration and its later additions
# grant exactly these.
VIEW_MODELS = [
    ("albums", "album"),
    ("albums", "image"),
    ("albums", "albumimage"),
    ("generation", "batchtemplate"),
    ("generation", "batchtemplatelora"),
    ("generation", "batchgenerationrun"),
    ("generation", "generationjob"),
    ("generation", "lora"),
    ("labeling", "label"),
]
CREATOR_MODELS = [("generation", "batchtemplate"), ("generation", "batchtemplatelora"), ("albums", "album")]


def _user(user: Any) -> Any:
    return user if user is not None else AnonymousUser()


def is_curator(user: Any) -> bool:
    user = _user(user)
    return bool(user.is_authenticated and (user.is_superuser or user.has_perm(CURATE)))


def can_act(user: Any, permission: str) -> bool:
    """May this user start this kind of work (``GENERATE``, ``LABEL`` ...) or hold this perm?"""
    user = _user(user)
    return bool(user.is_authenticated and user.is_active and user.has_perm(permission))


def can_view(user: Any, obj: Model | None = None) -> bool:
    user = _user(user)
    if not user.is_authenticated:
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
            return False
        if request.method in SAFE_METHODS:
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
            if permission is not None:
                ensure_can_act(request.user, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
