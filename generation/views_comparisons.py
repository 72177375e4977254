"""Deck comparison pages: start one from a template, and the board (cards x variants) with picks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from albums.models import Album
from albums.views import url_for_ids
from generation.deck_selectors import comparison_columns
from generation.models import BatchTemplate, DeckComparison, DeckSlot
from generation.services.comparisons import VARIANTS_MAX, comparison_start
from generation.services.decks import slot_pick
from imagineer import permissions as perms
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, SignedInRequest, role_required

PICK_TARGETS = 20


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError, InvalidOperation):
        return text


def _variants_from_form(data: Any, lora_names: list[str]) -> list[dict[str, Any]]:
    """Variant k's fields are ``theme_k``, ``style_k``, ``steps_k``, ``guidance_k``, ``lora_<i>_k``; blank: not varied.
    A variant is kept when it has any field filled or is one of the first two."""
    variants = []
    for number in range(1, VARIANTS_MAX + 1):
        variant: dict[str, Any] = {}
        if data.get(f"theme_{number}", "").strip():
            variant["theme"] = data[f"theme_{number}"].strip()
        if data.get(f"style_{number}", "").strip():
            variant["style_suffix"] = data[f"style_{number}"].strip()
        if data.get(f"steps_{number}", "").strip():
            variant["steps"] = _number(data[f"steps_{number}"], int)
        if data.get(f"guidance_{number}", "").strip():
            variant["guidance_scale"] = _number(data[f"guidance_{number}"], float)
        weights = {
            name: str(_number(data[f"lora_{position}_{number}"], Decimal))
            for position, name in enumerate(lora_names)
            if data.get(f"lora_{position}_{number}", "").strip()
        }
        if weights:
            variant["lora_weights"] = weights
        if variant or number <= 2:
            variants.append(variant)
    return variants


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(GENERATE)
def comparison_new(request: SignedInRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(BatchTemplate.objects.prefetch_related("lora_stack__lora"), slug=slug)
    lora_names = [entry.lora.name for entry in template.lora_stack.all()]
    status, error = 200, None
    if request.method == "POST":
        first_text = request.POST.get("first", "").strip()
        try:
            comparison = comparison_start(
                template=template,
                variants=_variants_from_form(request.POST, lora_names),
                theme=request.POST.get("theme", ""),
                name=request.POST.get("name", ""),
                first=_number(first_text, int) if first_text else None,
                created_by=request.user,
            )
        except ApplicationError as exc:
            error, status = exc, 400
        else:
            messages.success(request, "The variants are queued; the board fills in as they finish.")
            return redirect("generation:comparison-detail", pk=comparison.pk)
    return render(
        request,
        "generation/comparison_new.html",
        {
            "template": template,
            "lora_names": lora_names,
            "numbers": range(1, VARIANTS_MAX + 1),
            "error": error,
            "data": request.POST,
        },
        status=status,
    )


def _pick_targets(user: Any, comparison: DeckComparison) -> QuerySet[Album]:
    """Decks a cell may be picked into: this user's (or, for curators, any) decks of the template."""
    if not perms.can_act(user, GENERATE) or comparison.template_id is None:
        return Album.objects.none()
    return (
        perms.albums_editable(user)
        .filter(generation_runs__template_id=comparison.template_id, slots__isnull=False)
        .distinct()
        .order_by("-created_at", "-id")[:PICK_TARGETS]
    )


@require_safe
@role_required()
def comparison_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    """The board: one row per card, one column per variant, any cell pickable into any of its decks."""
    comparison = get_object_or_404(DeckComparison.objects.select_related("template"), pk=pk)
    columns = comparison_columns(comparison=comparison)
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    indices = sorted({index for column in columns for index in column.cards})
    rows: list[dict[str, Any]] = []
    for index in indices:
        title = next((column.cards[index].title for column in columns if index in column.cards), "")
        cells = []
        for column in columns:
            card = column.cards.get(index)
            pick = card.pick_id if card else None
            cells.append(
                {
                    "pick_thumb": thumbnail_url(pick) if pick else "",
                    "takes": [
                        {
                            "value": f"{index}:{take.image_id}",
                            "thumb": thumbnail_url(take.image_id),
                            "picked": take.image_id == pick,
                        }
                        for take in (card.takes if card else [])
                        if take.image_id
                    ],
                    "pending": card.pending if card else 0,
                }
            )
        rows.append({"number": str(index + 1), "title": title, "cells": cells})
    return render(
        request,
        "generation/comparison_detail.html",
        {
            "comparison": comparison,
            "columns": columns,
            "rows": rows,
            "targets": list(_pick_targets(request.user, comparison)),
            "pending": any(cell["pending"] for row in rows for cell in row["cells"]),
            "csrf": get_token(request),
        },
    )


@require_POST
@role_required(GENERATE)
def comparison_pick(request: SignedInRequest, pk: int) -> HttpResponse:
    """Pick a cell (``pick`` = "<card index>:<image id>") into a deck of the same template (``into``)."""
    comparison = get_object_or_404(DeckComparison, pk=pk)
    into = request.POST.get("into", "")
    index_text, _, image_text = request.POST.get("pick", "").partition(":")
    album = perms.albums_visible(request.user).filter(pk=int(into) if into.isdigit() else -1).first()
    try:
        if album is None:
            raise ApplicationError("Choose a deck to pick into.", fields={"into": ["Choose a deck."]})
        perms.ensure_can_change_deck(request.user, album)
        slot = DeckSlot.objects.select_related("run").filter(album=album, index=_number(index_text, int)).first()
        image = (
            perms.images_visible(request.user)
            .filter(pk=_number(image_text, int) if image_text.isdigit() else -1)
            .first()
        )
        if slot is None or image is None:
            raise ApplicationError("Choose a cell to pick.", fields={"pick": ["Choose a cell to pick."]})
        slot_pick(slot=slot, image=image)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Picked for card {slot.index + 1} ({slot.title}) of {album.name}.")
    return redirect("generation:comparison-detail", pk=comparison.pk)
