"""The deck page (a generated album card by card) and its actions: more takes, vary, pick, complete.

Thin: look up and authorize (imagineer.permissions), call one service, redirect back to the card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from albums.models import Album
from albums.selectors import album_neighbours
from albums.views import url_for_ids
from generation.deck_selectors import DROPPED, CardRow, TakeRow, deck_card_rows, slot_takes_chosen
from generation.models import BatchGenerationRun, DeckSlot, GenerationJob
from generation.services.decks import TAKES_MAX, run_complete, slot_pick, slot_vary, slots_takes_add
from imagineer import permissions as perms
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, SignedInRequest, role_required

COMPARE_MIN, COMPARE_MAX = 2, 6


def _url_for_index(name: str, album_pk: int) -> Callable[[int], str]:
    """A fast ``lambda index: reverse(name, args=[album_pk, index])``."""
    marker = 987654321
    head, tail = reverse(name, args=[album_pk, marker]).rsplit(str(marker), 1)
    return lambda index: f"{head}{int(index)}{tail}"


def _take_label(take: TakeRow, position: int, first: TakeRow) -> str:
    """ "#2 · seed 7 · vary 0.5 · prompt edited · 30 steps": what differs from the card's first take."""
    parts = [f"#{position}", f"seed {take.seed}"]
    if take.strength is not None:
        parts.append(f"vary {take.strength:g}")
    if take is not first and take.prompt != first.prompt:
        parts.append("prompt edited")
    if take is not first and take.steps != first.steps:
        parts.append(f"{take.steps} steps")
    return " · ".join(parts)


def _take_status(take: TakeRow) -> str:
    if take.status == GenerationJob.Status.RUNNING:
        return f"running {take.progress_done}/{take.steps}"
    return take.status


def _deck_rows(album: Album, cards: list[CardRow]) -> list[dict[str, Any]]:
    """The cards as the template needs them; every URL builder made once for all cards."""
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    image_url = url_for_ids("albums:album-image", album.pk)
    pick_url = _url_for_index("generation:deck-pick", album.pk)
    vary_url = _url_for_index("generation:deck-vary", album.pk)
    compare_url = _url_for_index("generation:deck-compare", album.pk)
    card_url = _url_for_index("generation:deck-card", album.pk)
    rows = []
    for card in cards:
        pick = card.pick_id
        takes = [
            {
                "number": str(position),
                "job_id": str(take.job_id),
                "image_id": str(take.image_id or ""),
                "thumb": thumbnail_url(take.image_id) if take.image_id else "",
                "picked": take.image_id is not None and take.image_id == pick,
                "label": _take_label(take, position, card.takes[0]),
                "status": "" if take.image_id else _take_status(take),
                "nsfw": bool(take.is_nsfw),
            }
            for position, take in enumerate(card.takes, start=1)
        ]
        rows.append(
            {
                "number": str(card.index + 1),
                "index": str(card.index),
                "title": card.title,
                "prompt_edit": card.prompt_edit,
                "pending": card.pending,
                "pick_thumb": thumbnail_url(pick) if pick else "",
                "pick_nsfw": card.pick_nsfw,
                "pick_href": image_url(pick) if pick else "",
                "pick_url": pick_url(card.index),
                "vary_url": vary_url(card.index),
                "compare_url": compare_url(card.index),
                "card_url": card_url(card.index),
                "takes": takes,
                "has_images": any(take["thumb"] for take in takes),
                "comparable": sum(1 for take in takes if take["thumb"]) >= COMPARE_MIN,
            }
        )
    return rows


def _card_context(request: HttpRequest, album: Album) -> dict[str, Any]:
    """What a card needs besides itself (the page and a card's live refresh share it)."""
    return {
        "can_change": perms.can_change_deck(request.user, album),
        "csrf": get_token(request),
        "takes_url": reverse("generation:deck-takes", args=[album.pk]),
        "takes_max": str(TAKES_MAX),
    }


def deck_page(request: HttpRequest, album: Album) -> HttpResponse:
    """The album page of a deck: picks in slot order, each card's takes beside it.

    54 cards x 3 takes is 160-odd takes: rows are read as plain values, every URL is built
    once per route, the CSRF token once per page, and numbers are formatted here rather than
    localized tag by tag (bench/deck_page.py measures it). A card with takes in progress
    refreshes itself (``deck_card``), not the page.
    """
    cards = deck_card_rows(album_id=album.pk)
    rows = _deck_rows(album, cards)
    run = BatchGenerationRun.objects.filter(album=album).order_by("-created_at", "-id").first()
    newer, older = album_neighbours(album=album, albums=perms.albums_visible(request.user))
    return render(
        request,
        "generation/deck.html",
        {
            "album": album,
            "rows": rows,
            "run": run,
            "made": sum(1 for row in rows if row["pick_thumb"]),
            "pending": sum(card.pending for card in cards),
            "missing": run is not None and run.total_items < len(cards),
            "can_label": perms.can_label_album(request.user, album),
            "newer": newer,
            "older": older,
            **_card_context(request, album),
        },
    )


@require_safe
@role_required()
def deck_card(request: SignedInRequest, album_pk: int, index: int) -> HttpResponse:
    """One card of the deck page, for its live refresh while its takes are made: three queries
    whatever the number of takes."""
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_pk)
    cards = deck_card_rows(album_id=album.pk, index=index)
    if not cards:
        raise Http404(f"The deck has no card {index + 1}.")
    return render(
        request,
        "generation/_deck_card.html",
        {"album": album, "row": _deck_rows(album, cards)[0], **_card_context(request, album)},
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


def _loras_text(stack: list[dict]) -> str:
    return ", ".join(f"{entry.get('name')} {entry.get('weight')}" for entry in stack or []) or "none"


def _recipe_rows(takes: list[GenerationJob], numbers: dict[int, int]) -> list[dict]:
    """One row per recipe field, each value per take; ``differs`` marks the fields the takes disagree on."""
    fields = [
        ("Seed", lambda job: str(job.seed)),
        ("Denoising strength", lambda job: f"{job.strength:g}" if job.strength is not None else "text to image"),
        (
            "Varied from",
            lambda job: (
                f"take #{numbers[job.init_image_id]}"
                if job.init_image_id in numbers
                else ("another image" if job.init_image_id else "—")
            ),
        ),
        ("Steps", lambda job: str(job.steps)),
        ("Guidance", lambda job: f"{job.guidance_scale:g}"),
        ("LoRA weights", lambda job: _loras_text(job.lora_stack)),
        ("Prompt", lambda job: job.prompt),
    ]
    rows = []
    for label, value_of in fields:
        values = [value_of(job) for job in takes]
        rows.append({"label": label, "values": values, "differs": len(set(values)) > 1})
    return rows


@require_safe
@role_required()
def deck_compare(request: SignedInRequest, album_pk: int, index: int) -> HttpResponse:
    """Two to six takes of one card side by side, large, with the recipe fields that differ marked;
    ``take`` (job ids, repeated) chooses them, none: the card's first six finished takes.
    Four queries whatever the number of takes."""
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_pk)
    slot = get_object_or_404(DeckSlot, album=album, index=index)
    asked = request.GET.getlist("take")
    ids = {int(value) for value in asked if value.isdigit()}
    takes = slot_takes_chosen(slot=slot, job_ids=sorted(ids))
    error = ""
    if len(ids) != len(asked) or (ids and len(takes) != len(ids)):
        error = f"take: choose finished takes of {slot.title}; some of those asked for are not."
    else:
        takes = takes if ids else takes[:COMPARE_MAX]
        if not COMPARE_MIN <= len(takes) <= COMPARE_MAX:
            error = f"take: compare {COMPARE_MIN} to {COMPARE_MAX} finished takes; {len(takes)} chosen."
    # Takes are numbered as on the deck page (every take of the card, in order).
    order = slot.takes.exclude(DROPPED).order_by("created_at", "id").values_list("id", "result_image_id")
    by_job, by_image = {}, {}
    for position, (job_id, image_id) in enumerate(order, start=1):
        by_job[job_id] = position
        if image_id is not None:
            by_image[image_id] = position
    pick_id = slot.pick_id or next(iter(by_image), None)
    if error:
        takes = []
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    return render(
        request,
        "generation/deck_compare.html",
        {
            "album": album,
            "slot": slot,
            "number": slot.index + 1,
            "error": error,
            "takes": [
                {
                    "number": by_job.get(job.pk, ""),
                    "image_id": job.result_image_id,
                    "thumb": thumbnail_url(job.result_image_id),
                    "picked": job.result_image_id == pick_id,
                    "nsfw": bool(job.result_image and job.result_image.is_nsfw),
                }
                for job in takes
                if job.result_image_id is not None
            ],
            "recipe": _recipe_rows(takes, by_image) if takes else [],
            "can_change": perms.can_change_deck(request.user, album),
            "pick_url": reverse("generation:deck-pick", args=[album.pk, slot.index]),
            "here": request.get_full_path(),
            "back": f"{reverse('albums:album-detail', args=[album.pk])}#card-{slot.index + 1}",
        },
        status=400 if error else 200,
    )


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
