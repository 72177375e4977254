"""The deck page (a generated album card by card) and its actions: more takes, vary, pick, complete.

Thin: look up and authorize (imagineer.permissions), call one service, redirect back to the card.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from albums.models import Album
from albums.selectors import album_neighbours
from albums.views import url_for_ids
from generation.deck_selectors import deck_cards
from generation.models import BatchGenerationRun, DeckSlot
from generation.services.decks import TAKES_MAX, run_complete, slot_pick, slot_vary, slots_takes_add
from imagineer import permissions as perms
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, SignedInRequest, role_required


def deck_page(request: HttpRequest, album: Album) -> HttpResponse:
    """The album page of a deck: picks in slot order, each card's takes beside it."""
    cards = deck_cards(album=album)
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    image_url = url_for_ids("albums:album-image", album.pk)
    rows = []
    for card in cards:
        pick = card.pick
        picked = pick.pk if pick is not None else None
        takes = [
            (job, thumbnail_url(job.result_image_id) if job.result_image_id else "", job.result_image_id == picked)
            for job in card.takes
        ]
        rows.append(
            {
                "card": card,
                "pick_thumb": thumbnail_url(pick.pk) if pick else "",
                "pick_href": image_url(pick.pk) if pick else "",
                "takes": takes,
            }
        )
    run = BatchGenerationRun.objects.filter(album=album).order_by("-created_at", "-id").first()
    newer, older = album_neighbours(album=album, albums=perms.albums_visible(request.user))
    pending = sum(card.pending for card in cards)
    return render(
        request,
        "generation/deck.html",
        {
            "album": album,
            "rows": rows,
            "run": run,
            "made": sum(1 for card in cards if card.pick is not None),
            "pending": pending,
            "missing": run is not None and run.total_items < len(cards),
            "can_change": perms.can_change_deck(request.user, album),
            "takes_max": TAKES_MAX,
            "newer": newer,
            "older": older,
        },
    )


def _deck_get(request: SignedInRequest, album_pk: int) -> Album:
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_pk)
    perms.ensure_can_change_deck(request.user, album)
    return album


def _back(album: Album, index: int | None = None) -> HttpResponse:
    url = reverse("albums:album-detail", args=[album.pk])
    return redirect(f"{url}#card-{index + 1}" if index is not None else url)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return -1


@require_POST
@role_required(GENERATE)
def deck_takes_add(request: SignedInRequest, album_pk: int) -> HttpResponse:
    """More takes for one card (``slot``), the selected cards (``slots``) or all (``all``)."""
    album = _deck_get(request, album_pk)
    slots = DeckSlot.objects.filter(album=album).select_related("run").order_by("index")
    chosen = request.POST.getlist("slots")
    if request.POST.get("slot"):
        chosen = [request.POST["slot"]]
    if not request.POST.get("all"):
        slots = slots.filter(index__in=[int(value) for value in chosen if value.isdigit()])
    edit = request.POST.get("prompt_edit")
    try:
        jobs = slots_takes_add(
            slots=list(slots),
            count=_int(request.POST.get("count"), 1),
            prompt_edit=edit if request.POST.get("slot") and edit is not None else None,
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(jobs)} more take{'s' if len(jobs) != 1 else ''} queued.")
    single = slots.first() if request.POST.get("slot") else None
    return _back(album, single.index if single else None)


@require_POST
@role_required(GENERATE)
def deck_vary(request: SignedInRequest, album_pk: int, index: int) -> HttpResponse:
    album = _deck_get(request, album_pk)
    slot = get_object_or_404(DeckSlot.objects.select_related("run"), album=album, index=index)
    image = perms.images_visible(request.user).filter(pk=_int(request.POST.get("image"), -1)).first()
    try:
        if image is None:
            raise ApplicationError("Choose the take to vary.", fields={"image": ["Choose the take to vary."]})
        seed_text = request.POST.get("seed", "").strip()
        slot_vary(
            slot=slot,
            image=image,
            strength=request.POST.get("strength", ""),
            seed=_int(seed_text, -1) if seed_text else None,
            new_seed=request.POST.get("new_seed") == "on",
            count=_int(request.POST.get("count"), 1),
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"A variation of {slot.title} is queued.")
    return _back(album, slot.index)


@require_POST
@role_required(GENERATE)
def deck_pick(request: SignedInRequest, album_pk: int, index: int) -> HttpResponse:
    album = _deck_get(request, album_pk)
    slot = get_object_or_404(DeckSlot, album=album, index=index)
    image = perms.images_visible(request.user).filter(pk=_int(request.POST.get("image"), -1)).first()
    try:
        if image is None:
            raise ApplicationError("Choose a take to pick.", fields={"image": ["Choose a take to pick."]})
        slot_pick(slot=slot, image=image)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return _back(album, slot.index)


@require_POST
@role_required(GENERATE)
def run_complete_view(request: SignedInRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(BatchGenerationRun.objects.select_related("album"), pk=pk)
    perms.ensure_can_control(request.user, run)
    try:
        run_complete(run=run, created_by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The rest of the deck is queued.")
    if run.album is not None:
        return _back(run.album)
    return redirect("generation:run-detail", pk=run.pk)
