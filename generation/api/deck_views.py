"""Decks over the API: /api/albums/<id>/slots ... (reads for viewers, writes for the owner or a curator)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from albums.models import Album, Image
from generation.api.deck_serializers import (
    ComparisonSerializer,
    ComparisonStartSerializer,
    DeckTakesRequestSerializer,
    PickRequestSerializer,
    SlotSerializer,
    TakeSerializer,
    TakesRequestSerializer,
    VaryRequestSerializer,
)
from generation.deck_selectors import DeckCard, comparison_columns, deck_cards, takes_in_order
from generation.models import BatchTemplate, DeckComparison, DeckSlot, GenerationJob
from generation.services.comparisons import comparison_start
from generation.services.decks import slot_pick, slot_vary, slots_takes_add
from imagineer import permissions as perms
from imagineer.api_common import accepted
from imagineer.errors import field_error
from imagineer.permissions import GENERATE


def _album(request: Request, album_pk: int, *, change: bool = False) -> Album:
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_pk)
    if change:
        perms.ensure_can_change_deck(request.user, album)
    return album


def _slot(album: Album, index: int) -> DeckSlot:
    return get_object_or_404(DeckSlot.objects.select_related("run", "pick"), album=album, index=index)


def _card(slot: DeckSlot) -> DeckCard:
    return DeckCard(slot=slot, takes=list(takes_in_order().filter(slot=slot)))


def _image(request: Request, pk: int) -> Image:
    image = perms.images_visible(request.user).filter(pk=pk).first()
    if image is None:
        raise field_error("image", f"Image {pk} does not exist (or was deleted).")
    return image


def _queued(request: Request, album: Album, jobs: list[GenerationJob]) -> Response:
    location = reverse("api:deck-slots", kwargs={"album_pk": album.pk})
    return accepted(TakeSerializer(jobs, many=True, context={"request": request}).data, location, request)


class DeckSlotsView(APIView):
    public_albums = True

    @extend_schema(
        summary="A deck's cards in slot order, each with its takes and pick", responses=SlotSerializer(many=True)
    )
    def get(self, request: Request, album_pk: int) -> Response:
        album = _album(request, album_pk)
        return Response(SlotSerializer(deck_cards(album=album), many=True, context={"request": request}).data)


class DeckSlotView(APIView):
    public_albums = True

    @extend_schema(summary="One card of a deck with its takes and pick", responses=SlotSerializer)
    def get(self, request: Request, album_pk: int, index: int) -> Response:
        slot = _slot(_album(request, album_pk), index)
        return Response(SlotSerializer(_card(slot), context={"request": request}).data)


class DeckTakesView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="More takes (new seeds) for chosen cards or every card",
        request=DeckTakesRequestSerializer,
        responses={202: OpenApiResponse(TakeSerializer(many=True), description="Queued; poll the deck's slots.")},
    )
    def post(self, request: Request, album_pk: int) -> Response:
        album = _album(request, album_pk, change=True)
        serializer = DeckTakesRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        slots = DeckSlot.objects.filter(album=album).select_related("run").order_by("index")
        if not data["all"]:
            wanted = set(data["slots"])
            slots = slots.filter(index__in=wanted)
            missing = sorted(wanted - {slot.index for slot in slots})
            if missing:
                raise field_error("slots", f"Card {missing[0]} is not in this deck.")
        jobs = slots_takes_add(slots=list(slots), count=data["count"], created_by=perms.acting_user(request.user))
        return _queued(request, album, jobs)


class SlotTakesView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="More takes (new seeds) for one card, optionally with a prompt edit kept on the card",
        request=TakesRequestSerializer,
        responses={202: OpenApiResponse(TakeSerializer(many=True), description="Queued.")},
    )
    def post(self, request: Request, album_pk: int, index: int) -> Response:
        album = _album(request, album_pk, change=True)
        slot = _slot(album, index)
        serializer = TakesRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        jobs = slots_takes_add(
            slots=[slot],
            count=data["count"],
            prompt_edit=data.get("prompt_edit"),
            created_by=perms.acting_user(request.user),
        )
        return _queued(request, album, jobs)


class SlotVaryView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="Vary a take (img2img at a strength, same seed by default)",
        request=VaryRequestSerializer,
        responses={202: OpenApiResponse(TakeSerializer(many=True), description="Queued.")},
    )
    def post(self, request: Request, album_pk: int, index: int) -> Response:
        album = _album(request, album_pk, change=True)
        slot = _slot(album, index)
        serializer = VaryRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        jobs = slot_vary(
            slot=slot,
            image=_image(request, data["image"]),
            strength=data["strength"],
            seed=data.get("seed"),
            new_seed=data["new_seed"],
            count=data["count"],
            created_by=perms.acting_user(request.user),
        )
        return _queued(request, album, jobs)


class SlotPickView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="Pick a card's take (null: back to its first take)",
        request=PickRequestSerializer,
        responses=SlotSerializer,
    )
    def post(self, request: Request, album_pk: int, index: int) -> Response:
        album = _album(request, album_pk, change=True)
        slot = _slot(album, index)
        serializer = PickRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pk = serializer.validated_data["image"]
        slot = slot_pick(slot=slot, image=None if pk is None else _image(request, pk))
        return Response(SlotSerializer(_card(slot), context={"request": request}).data)


def comparison_board(comparison: DeckComparison) -> dict[str, Any]:
    """The board as data: variants (columns) and cards (rows of cells), in three queries."""
    columns = comparison_columns(comparison=comparison)
    indices = sorted({index for column in columns for index in column.cards})
    cards = []
    for index in indices:
        title = next((column.cards[index].title for column in columns if index in column.cards), "")
        cells = []
        for column in columns:
            card = column.cards.get(index)
            cells.append(
                {
                    "album": column.run.album_id,
                    "pick_id": card.pick_id if card else None,
                    "take_image_ids": [take.image_id for take in card.takes if take.image_id] if card else [],
                    "pending": card.pending if card else 0,
                }
            )
        cards.append({"index": index, "title": title, "cells": cells})
    return {
        "id": comparison.pk,
        "name": comparison.name,
        "template": comparison.template_id,
        "variants": [
            {
                "letter": column.letter,
                "differences": column.label,
                "run": column.run.pk,
                "album": column.run.album_id,
                "status": column.run.status,
            }
            for column in columns
        ],
        "cards": cards,
    }


class ComparisonStartView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="Start a deck comparison: 2-4 runs of one template differing in named settings",
        request=ComparisonStartSerializer,
        responses={202: OpenApiResponse(ComparisonSerializer, description="Queued; poll the Location.")},
    )
    def post(self, request: Request) -> Response:
        serializer = ComparisonStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = BatchTemplate.objects.filter(pk=data["template"]).first()
        if template is None:
            raise field_error("template", f"Template {data['template']} does not exist.")
        comparison = comparison_start(
            template=template,
            variants=data["variants"],
            theme=data.get("theme", ""),
            name=data.get("name", ""),
            rows=data.get("rows"),
            first=data.get("first"),
            sample=data.get("sample"),
            created_by=perms.acting_user(request.user),
        )
        location = reverse("api:comparison-detail", kwargs={"pk": comparison.pk})
        return accepted(comparison_board(comparison), location, request)


class ComparisonDetailView(APIView):
    @extend_schema(
        summary="A comparison board: cards x variants with each cell's pick and takes", responses=ComparisonSerializer
    )
    def get(self, request: Request, pk: int) -> Response:
        comparison = get_object_or_404(DeckComparison, pk=pk)
        return Response(comparison_board(comparison))
