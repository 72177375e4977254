"""Time to finish a 54-card poker deck at 300 DPI (Lanczos) and write all the exports.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer .venv/bin/python bench/finish_deck.py

Needs a migrated database; everything it creates is rolled back, files go to a temporary
MEDIA_ROOT. "baseline" is the straightforward way, written here: one card after another,
fonts loaded for every card, PNGs at zlib's default level, and every export decoding and
re-encoding the cards (PDF pages as rasters through Pillow's PDF writer, the back embedded
on every page). "ours" is ``cards.services.finishing.deck_export``: cards rendered in a thread
pool, fonts and glyphs cached, PNGs at level 3, PDFs with the PNG data embedded as is (img2pdf)
and the back stored once (pikepdf). Both produce the same exports from the same picks.
Target: ours under 20 s on a 2-core machine.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from albums.models import Album, AlbumImage  # noqa: E402
from albums.models import Image as ImageRow  # noqa: E402
from cards.render import fonts as font_module  # noqa: E402
from cards.render.card import back_render, card_render  # noqa: E402
from cards.render.exports import file_slug, mpc_image, pnp_layout, tts_cell_size  # noqa: E402
from cards.render.geometry import PAPER_SIZES, mm_to_px  # noqa: E402
from cards.services.designs import design_create, design_spec  # noqa: E402
from cards.services.finishing import EXPORT_FILES, deck_export  # noqa: E402
from cards.services.sources import album_card_sources  # noqa: E402
from generation.models import BatchGenerationRun, GenerationJob  # noqa: E402
from generation.services.builtin import builtin_templates_load  # noqa: E402

TITLE = "{value} of {suit}"
SHEET_DPI = 300


class Rollback(Exception):
    pass


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def art(seed: int) -> bytes:
    """A 512 x 720 picture with a photograph's detail (scikit-image's sample photographs), as
    compressible as generated art; a different crop and tint for every card."""
    from skimage import data

    photo = Image.fromarray(getattr(data, PHOTOS[seed % len(PHOTOS)])()).convert("RGB")
    scale = max(512 / photo.width, 720 / photo.height) * (1 + (seed % 5) / 10)
    photo = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1), Image.Resampling.LANCZOS)
    left, top = (seed * 7) % (photo.width - 511), (seed * 11) % (photo.height - 719)
    pixels = np.asarray(photo.crop((left, top, left + 512, top + 720))).astype(np.int16)
    pixels = np.clip(pixels + (seed * 13 % 40 - 20), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def deck_album(template) -> Album:
    import hashlib

    album = Album.objects.create(name="Bench deck", slug="bench-finish-deck", source_type="batch_generation")
    run = BatchGenerationRun.objects.create(template=template, album=album, total_items=len(template.csv_data))
    for index, row in enumerate(template.csv_data):
        data = art(index)
        relative = f"outputs/bench/{index + 1:02d}.png"
        path = Path(settings.MEDIA_ROOT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        image = ImageRow.objects.create(
            file=relative, width=512, height=720, file_size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        AlbumImage.objects.create(album=album, image=image, position=index + 1)
        GenerationJob.objects.create(
            run=run,
            row_index=index,
            album=album,
            prompt="bench",
            prompt_parts={"row": row},
            width=512,
            height=720,
            steps=1,
            guidance_scale=7,
            seed=index,
            status="succeeded",
            result_image=image,
        )
    return album


def baseline(album: Album, design, out: Path) -> dict[str, float]:
    """The straightforward implementation: serial, nothing cached, every export re-encodes."""
    timings: dict[str, float] = {}
    spec = design_spec(design)
    geometry = spec.geometry
    start = time.perf_counter()
    cards: list[tuple[str, Image.Image]] = []
    for source in album_card_sources(album=album, title_template=TITLE):
        font_module._local.fonts = {}  # a fresh font load for every card
        assert source.image_path is not None
        with Image.open(source.image_path) as picture:
            card = card_render(spec, picture, row=source.row, title=source.title, index=source.index)
        name = f"{source.index:03d}-{file_slug(source.title)}.png"
        card.save(out / name, dpi=(geometry.dpi, geometry.dpi))
        cards.append((name, Image.open(out / name)))
    back = back_render(spec)
    back.save(out / "back.png", dpi=(geometry.dpi, geometry.dpi))
    timings["finish"] = time.perf_counter() - start

    start = time.perf_counter()
    with zipfile.ZipFile(out / "cards.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, _ in cards:
            archive.write(out / name, name)
        archive.write(out / "back.png", "back.png")
    timings["zip"] = time.perf_counter() - start

    start = time.perf_counter()
    with zipfile.ZipFile(out / "mpc.zip", "w") as archive:
        for name, image in [*cards, ("back.png", back)]:
            buffer = io.BytesIO()
            mpc_image(image.convert("RGB"), geometry).save(buffer, format="PNG", dpi=(300, 300))
            archive.writestr(name, buffer.getvalue())
    timings["mpc"] = time.perf_counter() - start

    start = time.perf_counter()
    pages = [page for _, image in cards for page in (image.convert("RGB"), back)]
    pages[0].save(out / "dtc.pdf", save_all=True, append_images=pages[1:], resolution=geometry.dpi)
    timings["drivethru"] = time.perf_counter() - start

    for paper in ("a4", "letter"):
        start = time.perf_counter()
        layout = pnp_layout(geometry, paper)
        width, height = (mm_to_px(value, SHEET_DPI) for value in PAPER_SIZES[paper])
        sheets = []
        for first in range(0, len(cards), layout.per_sheet):
            group = cards[first : first + layout.per_sheet]
            for side in ("front", "back"):
                sheet = Image.new("RGB", (width, height), "white")
                draw = ImageDraw.Draw(sheet)
                for slot, (_, image) in enumerate(group):
                    rect = layout.trim_rect(slot)
                    if side == "back":
                        rect = layout.mirrored(rect)
                    x = round(rect[0] / 72 * SHEET_DPI)
                    y = height - round((rect[1] + rect[3]) / 72 * SHEET_DPI)
                    face: Image.Image = (back if side == "back" else image).crop(geometry.trim_box_px)
                    sheet.paste(face, (x, y))
                    if side == "front":
                        draw.line((x, y - 60, x, y - 20), fill="black")
                sheets.append(sheet)
        sheets[0].save(out / f"pnp-{paper}.pdf", save_all=True, append_images=sheets[1:], resolution=SHEET_DPI)
        timings[f"pnp-{paper}"] = time.perf_counter() - start

    start = time.perf_counter()
    cell = tts_cell_size(geometry)
    sheet = Image.new("RGB", (cell[0] * 10, cell[1] * 7))
    for slot, (_, image) in enumerate(cards):
        row, column = divmod(slot, 10)
        sheet.paste(
            image.convert("RGB").crop(geometry.trim_box_px).resize(cell, Image.Resampling.LANCZOS),
            (column * cell[0], row * cell[1]),
        )
    sheet.save(out / "tts.png")
    timings["tts"] = time.perf_counter() - start
    return timings


def ours(album: Album, design, out: Path) -> dict[str, float]:
    """Each stage reports its last progress when it is done: a stage's time runs from the
    previous stage's last report to its own."""
    start = time.perf_counter()
    ends: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        ends[stage] = time.perf_counter()

    deck_export(
        album=album, design=design, formats=list(EXPORT_FILES), output_dir=out, title_template=TITLE, progress=progress
    )
    timings, previous = {}, start
    for stage, end in ends.items():
        timings[stage], previous = end - previous, end
    return timings


def main() -> None:
    settings.DEBUG = False
    rows = []
    with tempfile.TemporaryDirectory() as media:
        settings.MEDIA_ROOT = Path(media)
        try:
            with transaction.atomic():
                template = next(
                    result.template for result in builtin_templates_load() if result.template.slug == "card_deck"
                )
                design = design_create(template=template, name="Bench classic", frame_width_mm=2, title_template=TITLE)
                album = deck_album(template)
                for label, function in (("baseline", baseline), ("ours", ours)):
                    out = Path(media) / label
                    out.mkdir()
                    start = time.perf_counter()
                    timings = function(album, design, out)
                    rows.append((label, time.perf_counter() - start, timings))
                raise Rollback
        except Rollback:
            pass
    stages = ["finish", "zip", "mpc", "drivethru", "pnp-a4", "pnp-letter", "tts"]
    print(f"54-card poker deck, 300 DPI, Lanczos; {os.cpu_count()} CPUs")
    print(f"{'':10}" + "".join(f"{stage:>11}" for stage in stages) + f"{'total':>10}")
    for label, total, timings in rows:
        print(f"{label:10}" + "".join(f"{timings.get(stage, 0):10.2f}s" for stage in stages) + f"{total:9.2f}s")
    base, mine = rows[0][1], rows[1][1]
    print(f"speed-up: {base / mine:.1f}x; target under 20 s: {'met' if mine < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
