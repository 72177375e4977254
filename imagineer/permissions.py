"""The one permission layer: every access decision of the pages, the API and the admin.

Roles are Django groups created by a migration (``imagineer/migrations``):

* **viewer**  — browse albums and images, read the API (the ``view_*`` permissions).
* **creator** — also generate, label, scrape, train (:data:`GENERATE`, :data:`LABEL`,
  :data:`SCRAPE`, :data:`TRAIN`) and create/edit/delete *their own* templates and albums.
* **curator** — also edit anything (:data:`CURATE`) and use the admin.
* superusers — everything, including the configuration.

The decisions, each a function of a typed user (:data:`AnyUser`, what ``request.user`` is):

* **view** — :func:`can_view` for one object; the querysets of what a user may see come from here
  too (:func:`albums_visible`, :func:`images_visible`, :func:`memberships_visible`,
  :func:`scrape_jobs_visible`, :func:`training_runs_visible`; :func:`albums_editable` for pickers).
  Scrape jobs and training runs are their owner's (and curators'); a labeling job is as visible as
  its album; anonymous visitors see public albums only while IMAGINEER_PUBLIC_ALBUMS is on.
* **act** — :func:`can_act`: may the user start this kind of work at all (their role)?
* **edit** — :func:`can_edit`: change an album's or a template's content (putting images into an
  album is one): its owner, or a curator.
* **control** — :func:`can_control`: cancel, retry, resume or delete a piece of work (a run, a
  job, a LoRA): the role permission of its kind, and its owner or a curator.
* **label** — :func:`can_label_image` / :func:`can_label_album`: labeling replaces an image's
  labels, so it is a write to the image: its owner (who made it, or the creator of an album that
  holds it) or a curator.
* **admin** — :func:`admin_site_has_permission` (:class:`imagineer.admin.ImagineerAdminSite`),
  :func:`admin_model_permission` (every ModelAdmin, through
  :class:`imagineer.admin.CuratorModelAdmin`) and :func:`can_configure` (``/api/config`` writes).

A view that writes on a user's behalf hands services :func:`acting_user` (pages behind
:func:`role_required` get a :class:`SignedInRequest`), so services are typed with the user model.

Who calls this module: the request layer only — page views (:func:`role_required`,
:func:`public_albums_view`, the ``ensure_*`` helpers), API views (:class:`RolePermission` and the
same helpers) and the admin. Services, selectors and tasks never ask who the user is, because:

* services are also run by Celery tasks, management commands and the admin, whose callers are
  trusted already; a service-level check needed a ``user=None`` means "trusted" convention that a
  task could hit by accident;
* how a refusal looks is a request-layer choice (404 for what you may not even see, 403 for what
  you may see but not change, a redirect to sign in), and the view has to fetch the object through
  a visibility queryset anyway;
* the permission matrix (``accounts/tests/test_permission_matrix.py``) requests every route as
  every role, so a view that forgets a check fails a test; a check hidden in a service is not
  visible to it, and generation's services never had one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, Literal, ParamSpec, TypeAlias, TypeVar, cast, overload

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from albums.models import Album, AlbumImage, Image, ScrapeJob
from labeling.models import LabelingJob
from training.models import TrainingRun

# What ``request.user`` is: a user of the project's user model, or an anonymous visitor.
AnyUser: TypeAlias = User | AnonymousUser

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
    ("generation", "deckslot"),
    ("generation", "deckcomparison"),
    ("labeling", "label"),
    ("labeling", "labelingjob"),
    ("training", "trainingrun"),
    ("cards", "finishingjob"),
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

# Work that is controlled (cancelled, retried, resumed, deleted) by its owner or a curator, and
# the role permission that kind of work needs.
CONTROL_PERMISSIONS = {
    ("generation", "batchgenerationrun"): GENERATE,
    ("generation", "generationjob"): GENERATE,
    ("generation", "lora"): GENERATE,
    ("labeling", "labelingjob"): LABEL,
    ("albums", "scrapejob"): SCRAPE,
    ("training", "trainingrun"): TRAIN,
    ("cards", "finishingjob"): GENERATE,
}
# Seen by their owner and curators only.
PRIVATE_MODELS = {("albums", "scrapejob"), ("training", "trainingrun")}

_M = TypeVar("_M", bound=Model)
_Album = TypeVar("_Album", bound=Album)
_Image = TypeVar("_Image", bound=Image)


def _key(obj: Model | type[Model]) -> tuple[str, str]:
    meta = obj._meta
    return meta.app_label, str(meta.model_name)


def _signed_in(user: AnyUser) -> User | None:
    """The user when signed in and active, else None (anonymous visitors and disabled accounts)."""
    if not user.is_authenticated or not user.is_active:
        return None
    return user


def _owns(user: User, obj: Model) -> bool:
    owner_id = getattr(obj, "created_by_id", None)
    return owner_id is not None and owner_id == user.pk


# --- roles ----------------------------------------------------------------------------------


def is_curator(user: AnyUser) -> bool:
    signed_in = _signed_in(user)
    return signed_in is not None and (signed_in.is_superuser or signed_in.has_perm(CURATE))


def can_act(user: AnyUser, permission: str) -> bool:
    """May this user start this kind of work (``GENERATE``, ``LABEL`` ...) or hold this perm?"""
    signed_in = _signed_in(user)
    return signed_in is not None and signed_in.has_perm(permission)


def user_role(user: AnyUser) -> str | None:
    """The user's role name (the highest, should a user hold several groups), or None."""
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    return next((role for role in reversed(ROLES) if role in names), None)


# --- view -----------------------------------------------------------------------------------


def public_albums_enabled() -> bool:
    return bool(getattr(settings, "IMAGINEER_PUBLIC_ALBUMS", False))


def _is_public(obj: Model) -> bool:
    """An album marked public, or an image in one (only while IMAGINEER_PUBLIC_ALBUMS is on)."""
    if not public_albums_enabled():
        return False
    if isinstance(obj, Album):
        return obj.is_public
    if isinstance(obj, Image):
        return obj.albums.filter(is_public=True).exists()
    return False


def can_view(user: AnyUser, obj: Model | None = None) -> bool:
    """May this user see this object (or, without one, read anything at all)?"""
    signed_in = _signed_in(user)
    if signed_in is None:
        return not user.is_authenticated and obj is not None and _is_public(obj)
    if obj is None:
        return True
    if isinstance(obj, LabelingJob):
        return can_view(signed_in, obj.album)
    app_label, model_name = _key(obj)
    if not signed_in.has_perm(f"{app_label}.view_{model_name}"):
        return False
    return (app_label, model_name) not in PRIVATE_MODELS or _owns(signed_in, obj) or is_curator(signed_in)


@overload
def albums_visible(user: AnyUser) -> QuerySet[Album]: ...
@overload
def albums_visible(user: AnyUser, albums: QuerySet[_Album]) -> QuerySet[_Album]: ...
def albums_visible(user: AnyUser, albums: QuerySet[Any] | None = None) -> QuerySet[Any]:
    """Albums (all, or of ``albums``) this user may browse: all when signed in, public ones for
    anonymous visitors (while IMAGINEER_PUBLIC_ALBUMS is on)."""
    albums = Album.objects.all() if albums is None else albums
    if _signed_in(user) is not None:
        return albums
    if user.is_authenticated:  # a disabled account
        return albums.none()
    return albums.filter(is_public=True) if public_albums_enabled() else albums.none()


@overload
def images_visible(user: AnyUser) -> QuerySet[Image]: ...
@overload
def images_visible(user: AnyUser, images: QuerySet[_Image]) -> QuerySet[_Image]: ...
def images_visible(user: AnyUser, images: QuerySet[Any] | None = None) -> QuerySet[Any]:
    """Images this user may see: all when signed in, those in a public album for anonymous visitors."""
    images = Image.objects.all() if images is None else images
    if _signed_in(user) is not None:
        return images
    return images.filter(albums__in=albums_visible(user)).distinct()


def memberships_visible(user: AnyUser, memberships: QuerySet[AlbumImage] | None = None) -> QuerySet[AlbumImage]:
    """An image's album memberships this user may see: a private album must not show through a
    public one (an image may be in both)."""
    memberships = AlbumImage.objects.all() if memberships is None else memberships
    if _signed_in(user) is not None:
        return memberships
    return memberships.filter(album__in=albums_visible(user))


def albums_editable(user: AnyUser, albums: QuerySet[Album] | None = None) -> QuerySet[Album]:
    """Albums this user may change (add images to): their own, or all for curators."""
    albums = Album.objects.all() if albums is None else albums
    signed_in = _signed_in(user)
    if signed_in is None or not signed_in.has_perm("albums.change_album"):
        return albums.none()
    return albums if is_curator(signed_in) else albums.filter(created_by=signed_in)


def _owned_or_all(user: AnyUser, queryset: QuerySet[_M]) -> QuerySet[_M]:
    signed_in = _signed_in(user)
    if signed_in is None:
        return queryset.none()
    return queryset if is_curator(signed_in) else queryset.filter(created_by=signed_in)


def scrape_jobs_visible(user: AnyUser, jobs: QuerySet[ScrapeJob] | None = None) -> QuerySet[ScrapeJob]:
    """Scrape jobs this user may follow: their own, or everyone's for curators."""
    return _owned_or_all(user, ScrapeJob.objects.all() if jobs is None else jobs)


def training_runs_visible(user: AnyUser, runs: QuerySet[TrainingRun] | None = None) -> QuerySet[TrainingRun]:
    """Training runs this user may follow: their own, or everyone's for curators."""
    return _owned_or_all(user, TrainingRun.objects.all() if runs is None else runs)


# --- edit, control, label -------------------------------------------------------------------


def can_edit(user: AnyUser, obj: Model) -> bool:
    """Curators edit anything; others only what they created, if their role may change it."""
    signed_in = _signed_in(user)
    if signed_in is None:
        return False
    if is_curator(signed_in):
        return True
    app_label, model_name = _key(obj)
    return _owns(signed_in, obj) and signed_in.has_perm(f"{app_label}.change_{model_name}")


def can_edit_template(user: AnyUser, template: Model) -> bool:
    """Change a template on the pages: as :func:`can_edit`, but built-in templates are read-only
    there for everyone (they are reloaded from ``data/``; duplicate one to change it)."""
    return not getattr(template, "is_builtin", False) and can_edit(user, template)


def can_delete_image(user: AnyUser, image: Image) -> bool:
    """Delete an image (from every album, with its file): whoever made or uploaded it, or a curator."""
    signed_in = _signed_in(user)
    return signed_in is not None and (is_curator(signed_in) or _owns(signed_in, image))


def can_control(user: AnyUser, obj: Model) -> bool:
    """Cancel, retry, resume or delete a piece of work: the role permission of its kind, and its
    owner or a curator. Anything that is not work (an album, a template) is refused."""
    permission = CONTROL_PERMISSIONS.get(_key(obj))
    signed_in = _signed_in(user)
    if permission is None or signed_in is None or not can_act(signed_in, permission):
        return False
    return is_curator(signed_in) or _owns(signed_in, obj)


def can_change_deck(user: AnyUser, album: Album) -> bool:
    """More takes, variations, picks and completing a deck: its owner or a curator, with the
    role that may generate. Viewers see decks; they change none."""
    signed_in = _signed_in(user)
    if signed_in is None or not can_act(signed_in, GENERATE):
        return False
    return is_curator(signed_in) or _owns(signed_in, album)


def can_label_album(user: AnyUser, album: Album) -> bool:
    """Labeling an album replaces the labels of its images: its owner or a curator."""
    signed_in = _signed_in(user)
    if signed_in is None or not can_act(signed_in, LABEL):
        return False
    return is_curator(signed_in) or _owns(signed_in, album)


def can_label_image(user: AnyUser, image: Image) -> bool:
    """Labeling an image replaces its labels: whoever made it, the creator of an album that holds
    it, or a curator."""
    signed_in = _signed_in(user)
    if signed_in is None or not can_act(signed_in, LABEL):
        return False
    if is_curator(signed_in) or _owns(signed_in, image):
        return True
    return image.albums.filter(created_by=signed_in).exists()


# --- admin and configuration ----------------------------------------------------------------


def admin_site_has_permission(request: HttpRequest) -> bool:
    """The admin is for curators and superusers only (imagineer.admin.ImagineerAdminSite).

    Staff status alone is not enough: the admin has no ownership rules, so a creator who was
    made staff by hand must not edit other people's templates and albums there.
    """
    user = request.user
    return bool(user.is_active and user.is_staff and is_curator(user))


AdminAction = Literal["view", "add", "change", "delete"]


def admin_model_permission(user: AnyUser, action: AdminAction, model: type[Model]) -> bool:
    """May this user do this to this model in the admin? Curators (and superusers), as far as their
    role's model permissions go: the admin has no ownership rules of its own."""
    signed_in = _signed_in(user)
    if signed_in is None or not is_curator(signed_in):
        return False
    app_label, model_name = _key(model)
    return signed_in.has_perm(f"{app_label}.{action}_{model_name}")


def can_configure(user: AnyUser) -> bool:
    """The generation defaults and hardware options (``/api/config``): superusers only."""
    signed_in = _signed_in(user)
    return signed_in is not None and signed_in.is_superuser


# --- refusals -------------------------------------------------------------------------------


def acting_user(user: AnyUser) -> User:
    """The user on whose behalf a view writes: one this layer has already let act (RolePermission
    on API writes, role_required on pages), so never anonymous; refused should a view be wired
    without either."""
    signed_in = _signed_in(user)
    if signed_in is None:
        raise PermissionDenied("Sign in first.")
    return signed_in


def ensure_can_act(user: AnyUser, permission: str) -> None:
    if not can_act(user, permission):
        raise PermissionDenied("Your role does not allow this. Ask a curator for the creator role.")


def ensure_can_view(user: AnyUser, obj: Model) -> None:
    if not can_view(user, obj):
        raise PermissionDenied("You may not see this.")


def ensure_can_edit(user: AnyUser, obj: Model) -> None:
    if not can_edit(user, obj):
        raise PermissionDenied(f"You can only change {obj._meta.verbose_name_plural} that you created.")


def ensure_can_edit_template(user: AnyUser, template: Model) -> None:
    if getattr(template, "is_builtin", False):
        raise PermissionDenied("Built-in templates are read-only here: duplicate this one and change the copy.")
    ensure_can_edit(user, template)


def ensure_can_control(user: AnyUser, obj: Model) -> None:
    if not can_control(user, obj):
        raise PermissionDenied(f"Only a curator or whoever started it may change this {obj._meta.verbose_name}.")


def ensure_can_change_deck(user: AnyUser, album: Album) -> None:
    if not can_change_deck(user, album):
        raise PermissionDenied("Only the deck's owner or a curator may change its cards.")


def ensure_can_label_album(user: AnyUser, album: Album) -> None:
    if not can_label_album(user, album):
        raise PermissionDenied("Only the album's owner or a curator may label it.")


def ensure_can_label_image(user: AnyUser, image: Image) -> None:
    if not can_label_image(user, image):
        raise PermissionDenied(
            "Only the image's owner (or the owner of an album holding it) or a curator may label it."
        )


# --- the API and the pages ------------------------------------------------------------------

ObjectRule = Literal["view", "control"]
_OBJECT_RULES: dict[str, Callable[[AnyUser, Model], bool]] = {"view": can_view, "control": can_control}


class RolePermission(BasePermission):
    """DRF permission: reads need a signed-in user; writes need the view's ``required_permission``
    (a string, or a dict by action/method) and, on objects, the view's ``object_permission``:
    ``"control"`` (the default: owner or curator, see :func:`can_control`) or ``"view"`` (acting
    on something shared, such as starting a run from a template: seeing it is enough).

        class GenerateView(APIView):
            required_permission = GENERATE

    A dict entry for a read action or method (``{"list": CURATE}``) is enforced on reads too.
    Views with ``public_albums = True`` also answer anonymous reads while IMAGINEER_PUBLIC_ALBUMS
    is on; they must narrow their queryset with :func:`albums_visible` / :func:`images_visible`.
    """

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user.is_authenticated:
            return bool(
                request.method in SAFE_METHODS and getattr(view, "public_albums", False) and public_albums_enabled()
            )
        if not user.is_active:
            return False
        required = getattr(view, "required_permission", None)
        if isinstance(required, dict):
            required = required.get(getattr(view, "action", None)) or required.get(request.method)
        elif request.method in SAFE_METHODS:
            required = None
        return required is None or can_act(user, required)

    def has_object_permission(self, request: Request, view: Any, obj: Model) -> bool:
        if request.method in SAFE_METHODS:
            return can_view(request.user, obj)
        rule: ObjectRule = getattr(view, "object_permission", "control")
        allowed = _OBJECT_RULES[rule](request.user, obj)
        if not allowed and rule == "control":
            # DRF makes a permission object per request: the message is this refusal's.
            self.message = f"Only a curator or whoever started it may change this {obj._meta.verbose_name}."
        return allowed


class ConfigurePermission(BasePermission):
    """DRF permission for ``/api/config``: reads for everyone signed in, writes see :func:`can_configure`."""

    message = "Only an administrator (superuser) may change the configuration."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or can_configure(request.user)


class SignedInRequest(HttpRequest):
    """What a page view behind :func:`role_required` receives: ``user`` is signed in and active."""

    user: User


_P = ParamSpec("_P")
_R = TypeVar("_R", bound=HttpResponseBase)
PageView: TypeAlias = Callable[Concatenate[HttpRequest, _P], _R]
SignedInView: TypeAlias = Callable[Concatenate[SignedInRequest, _P], _R]


def role_required(
    permission: str | None = None,
) -> Callable[[SignedInView[_P, _R]], PageView[_P, _R | HttpResponseRedirect]]:
    """Page-view decorator: sign-in required (redirect), then ``permission`` if given (403)."""

    def decorator(view: SignedInView[_P, _R]) -> PageView[_P, _R | HttpResponseRedirect]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: _P.args, **kwargs: _P.kwargs) -> _R | HttpResponseRedirect:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.is_active:
                raise PermissionDenied("This account is disabled.")
            if permission is not None:
                ensure_can_act(request.user, permission)
            return view(cast(SignedInRequest, request), *args, **kwargs)

        return wrapped

    return decorator


def public_albums_view(view: PageView[_P, _R]) -> PageView[_P, _R | HttpResponseRedirect]:
    """Page-view decorator for album/image browsing: anonymous visitors are let in while
    IMAGINEER_PUBLIC_ALBUMS is on (the view shows them only public albums, via
    :func:`albums_visible` / :func:`images_visible`); otherwise they are sent to sign in."""

    @login_not_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: _P.args, **kwargs: _P.kwargs) -> _R | HttpResponseRedirect:
        if not request.user.is_authenticated and not public_albums_enabled():
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped
