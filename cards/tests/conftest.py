"""Fixtures for the cards tests: built-in templates and albums made by (recorded) batch runs."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Collection

import numpy as np
import pytest
from django.conf import settings
from PIL import Image as PILImage

from albums.models import Album, AlbumImage, Image
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob
from generation.services.builtin import builtin_templates_load


def art_png(seed: int, size: tuple[int, int] = (512, 720)) -> bytes:
    """Art like a generated image: smooth colour with noise (compresses like real art, not like a flat fill)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 / width), (y * 255 / height), np.full_like(x, (seed * 37) % 256, dtype=float)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, size=(height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@pytest.fixture
def builtin_templates(db) -> dict[str, BatchTemplate]:
    return {result.template.slug: result.template for result in builtin_templates_load()}


@pytest.fixture
def card_deck_template(builtin_templates) -> BatchTemplate:
    return builtin_templates["card_deck"]


@pytest.fixture
def zodiac_template(builtin_templates) -> BatchTemplate:
    return builtin_templates["zodiac"]


@pytest.fixture
def run_album(db) -> Callable[..., Album]:
    """``run_album(template, rows=N, missing={3})``: the album of a finished batch run of the
    template's first N rows, each row's image on disk, except the rows in ``missing`` (failed)."""

    def make(
        template: BatchTemplate,
        *,
        rows: int | None = None,
        missing: Collection[int] = (),
        size: tuple[int, int] = (512, 720),
    ) -> Album:
        chosen = template.csv_data[: rows or len(template.csv_data)]
        album = Album.objects.create(
            name=f"{template.name} deck",
            slug=Album.unique_slug(f"{template.slug}-deck"),
            source_type="batch_generation",
        )
        run = BatchGenerationRun.objects.create(
            template=template, template_snapshot={"name": template.name}, album=album, total_items=len(chosen)
        )
        for index, row in enumerate(chosen):
            job = GenerationJob(
                run=run,
                row_index=index,
                album=album,
                prompt=f"row {index}",
                prompt_parts={"row": dict(row), "title": str(next(iter(row.values())))},
                width=size[0],
                height=size[1],
                steps=2,
                guidance_scale=7.0,
                seed=index,
                status=GenerationJob.Status.FAILED if index + 1 in missing else GenerationJob.Status.SUCCEEDED,
            )
            if index + 1 not in missing:
                data = art_png(index, size)
                relative = f"outputs/{album.slug}/{index + 1:02d}.png"
                path = settings.MEDIA_ROOT / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                image = Image.objects.create(
                    file=relative,
                    width=size[0],
                    height=size[1],
                    file_size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
                AlbumImage.objects.create(album=album, image=image, position=index + 1)
                job.result_image = image
            job.save()
        return album

    return make
