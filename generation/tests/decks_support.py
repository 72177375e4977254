"""Build decks straight in the database (no worker) for page, API, query-count and bench tests."""

from __future__ import annotations

from albums.models import Album, AlbumImage
from generation.models import BatchGenerationRun, DeckSlot, GenerationJob
from imagineer.tests.factories import ImageFactory

SIGNS = ["Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius", "Capricorn"]


def deck_build(*, slots: int, takes: int, owner=None, titles: list[str] | None = None) -> Album:
    """A finished deck: ``slots`` cards, each with ``takes`` finished takes (real PNG files)."""
    album = Album.objects.create(
        name=f"Deck {slots}x{takes}",
        slug=Album.unique_slug(f"deck-{slots}x{takes}"),
        source_type=Album.SourceType.BATCH_GENERATION,
        created_by=owner,
    )
    snapshot = {
        "name": "bench",
        "prompt_template": "{sign}",
        "base_prompt": "a card",
        "style_suffix": "",
        "columns": ["sign"],
        "loras": [],
    }
    params = {"steps": 2, "guidance_scale": 7.0, "width": 64, "height": 64, "negative_prompt": "", "seed": 1}
    run = BatchGenerationRun.objects.create(
        template_snapshot=snapshot,
        overrides={**params, "seed_policy": "increment"},
        album=album,
        total_items=slots,
        completed_items=slots,
        status=BatchGenerationRun.Status.COMPLETED,
        created_by=owner,
    )
    for index in range(slots):
        title = titles[index] if titles else f"{SIGNS[index % len(SIGNS)]} {index + 1}"
        slot = DeckSlot.objects.create(album=album, run=run, index=index, title=title, row={"sign": title})
        for take in range(takes):
            image = ImageFactory.create(width=64, height=64, title=title, color=(index % 255, take * 60, 90))
            AlbumImage.objects.create(album=album, image=image, position=index + 1)
            GenerationJob.objects.create(
                run=run if take == 0 else None,
                row_index=index,
                slot=slot,
                album=album,
                prompt=f"a card, {title}",
                width=64,
                height=64,
                steps=2,
                guidance_scale=7.0,
                seed=1000 + index * 10 + take,
                status=GenerationJob.Status.SUCCEEDED,
                result_image=image,
                created_by=owner,
            )
    return album
