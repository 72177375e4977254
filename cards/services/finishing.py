"""Finishing a deck (picks -> print-size cards) and exporting it (cards -> printer files).

Both run synchronously and report progress through a callback ``(stage, done, total)``;
phase 2 runs them inside a background job (and sends the hires step to the gpu worker).
Rendering happens in a thread pool (Pillow releases the GIL while it resizes and encodes);
database writes stay on the calling thread.

A finished card is re-rendered only when its ``render_key`` changes: a digest of the
design, the pick's content, the row, title and place, and ``RENDER_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from PIL import Image as PILImage

from albums.models import Album, Image
from albums.services.curation import image_delete
from albums.services.files import media_path
from cards.models import CardDesign, FinishedCard
from cards.render.card import CardSpec, back_render, card_render, overlay_fit
from cards.render.exports import (
    ExportCard,
    ExportError,
    PdfImageCache,
    export_drivethru,
    export_mpc,
    export_pnp,
    export_tts,
    export_zip,
    file_slug,
    mpc_check,
)
from cards.render.imageio import ImageInputError, atomic_output, image_open_checked, png_bytes
from cards.services.designs import design_fingerprint, design_spec
from cards.services.sources import CardSource, album_card_sources
from imagineer.errors import ApplicationError, field_error

# Bump when the renderer's output changes for the same inputs: every card is then stale.
RENDER_VERSION = 1
ProgressCallback = Callable[[str, int, int], None]

EXPORT_FILES = {
    "zip": "cards.zip",
    "mpc": "makeplayingcards-poker.zip",
    "drivethru": "drivethrucards.pdf",
    "pnp-a4": "print-and-play-a4.pdf",
    "pnp-letter": "print-and-play-letter.pdf",
    "tts": "tabletop-simulator.zip",
}


@dataclass
class FinishResult:
    cards: list[FinishedCard] = field(default_factory=list)
    back: FinishedCard | None = None
    rendered: int = 0
    reused: int = 0
    missing: list[CardSource] = field(default_factory=list)
    failed: list[tuple[CardSource, str]] = field(default_factory=list)


@dataclass
class ExportResult:
    finish: FinishResult
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rendered:
    file_name: str
    width: int
    height: int
    size: int
    sha256: str


def _workers(workers: int | None) -> int:
    return max(1, workers or os.cpu_count() or 1)


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([RENDER_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()


def _write(relative: str, card: PILImage.Image, dpi: int) -> _Rendered:
    data = png_bytes(card, dpi=dpi)
    with atomic_output(media_path(relative)) as handle:
        handle.write(data)
    return _Rendered(relative, card.width, card.height, len(data), hashlib.sha256(data).hexdigest())


def _front_render(spec: CardSpec, source: CardSource, relative: str, overlays: dict[Path, PILImage.Image]) -> _Rendered:
    assert source.image_path is not None
    try:
        art = image_open_checked(source.image_path)
    except (ImageInputError, OSError) as exc:
        raise ApplicationError(f"The pick of card {source.index} ({source.title}) cannot be read: {exc}") from None
    with art:
        card = card_render(spec, art, row=source.row, title=source.title, index=source.index, overlays=overlays)
    return _write(relative, card, spec.geometry.dpi)


def _back_render(spec: CardSpec, relative: str, art: Path | None = None) -> _Rendered:
    if art is None:
        return _write(relative, back_render(spec), spec.geometry.dpi)
    try:
        image = image_open_checked(art)
    except (ImageInputError, OSError) as exc:
        raise ApplicationError(f"The generated card back cannot be read: {exc}") from None
    with image:
        return _write(relative, back_render(spec, image), spec.geometry.dpi)


@transaction.atomic
def _record(
    *,
    album: Album,
    design: CardDesign,
    side: str,
    position: int,
    title: str,
    row: dict[str, Any],
    source_image: Image | None,
    slot_id: int | None,
    rendered: _Rendered,
    render_key: str,
    created_by: Any,
) -> FinishedCard:
    image = Image.objects.create(
        file=rendered.file_name,
        width=rendered.width,
        height=rendered.height,
        file_size=rendered.size,
        sha256=rendered.sha256,
        title=title[:300],
        recipe={
            "finished_card": {
                "design": design.pk,
                "side": side,
                "position": position,
                "source_image": source_image.pk if source_image else None,
                "render_key": render_key,
            }
        },
        created_by=created_by,
    )
    finished = (
        FinishedCard.objects.select_for_update()
        .filter(design=design, album=album, side=side, position=position)
        .first()
    )
    previous = finished.image if finished else None
    if finished is None:
        finished = FinishedCard(design=design, album=album, side=side, position=position)
    finished.title, finished.row, finished.source_image = title[:300], row, source_image
    finished.slot_id = slot_id
    finished.image, finished.render_key = image, render_key
    finished.save()
    if previous is not None:
        image_delete(image=previous)
    return finished


def _is_current(finished: FinishedCard | None, key: str, force: bool) -> bool:
    return (
        not force
        and finished is not None
        and finished.render_key == key
        and media_path(finished.image.file.name).exists()
    )


def deck_finish(
    *,
    album: Album,
    design: CardDesign,
    sources: Sequence[CardSource] | None = None,
    title_template: str = "",
    force: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    created_by: Any = None,
    back_art: Path | None = None,
) -> FinishResult:
    """Make every card that has a pick into a finished card (and the back); cards without a
    pick are listed in ``missing``, cards whose pick cannot be read in ``failed``.

    ``back_art``: a generated back picture (the design's back prompt) instead of its image or colour.
    """
    if sources is None:
        sources = album_card_sources(album=album, title_template=title_template)
    spec = design_spec(design)
    fingerprint = design_fingerprint(design)
    result = FinishResult(missing=[source for source in sources if source.image is None])
    picked = [source for source in sources if source.image is not None]
    existing = {
        (card.side, card.position): card
        for card in FinishedCard.objects.filter(album=album, design=design).select_related("image")
    }
    folder = f"finished/{album.slug}/design-{design.pk}"
    total = len(picked) + 1
    overlays: dict[Path, PILImage.Image] = {}
    if spec.overlay_path is not None:
        overlays[spec.overlay_path] = overlay_fit(image_open_checked(spec.overlay_path), spec.geometry)

    def report(done: int) -> None:
        if progress is not None:
            progress("finish", done, total)

    done = 0
    report(done)
    back_key = _key(fingerprint, "back", *([back_art.name] if back_art is not None else []))
    back = existing.get((FinishedCard.Side.BACK, 0))
    with ThreadPoolExecutor(max_workers=_workers(workers)) as pool:
        futures: list[tuple[CardSource | None, str, Future[_Rendered]]] = []
        if _is_current(back, back_key, force):
            result.back, result.reused, done = back, result.reused + 1, done + 1
        else:
            back_file = f"{folder}/back-{back_key[:12]}.png"
            futures.append((None, back_key, pool.submit(_back_render, spec, back_file, back_art)))
        for source in picked:
            assert source.image is not None
            key = _key(
                fingerprint,
                source.image.sha256,
                dict(source.row),
                source.title,
                source.index,
                *([source.art_key] if source.art_key else []),
            )
            current = existing.get((FinishedCard.Side.FRONT, source.index))
            if _is_current(current, key, force):
                result.cards.append(current)  # type: ignore[arg-type]
                result.reused += 1
                done += 1
                continue
            relative = f"{folder}/{source.index:03d}-{file_slug(source.title)}-{key[:12]}.png"
            futures.append((source, key, pool.submit(_front_render, spec, source, relative, overlays)))
        report(done)
        try:
            for card_source, key, future in futures:
                try:
                    rendered = future.result()
                except ApplicationError as exc:
                    if card_source is None:  # the back: no deck without it
                        raise
                    result.failed.append((card_source, exc.message))
                else:
                    finished = _record(
                        album=album,
                        design=design,
                        side=FinishedCard.Side.BACK if card_source is None else FinishedCard.Side.FRONT,
                        position=0 if card_source is None else card_source.index,
                        title="Back" if card_source is None else card_source.title,
                        row={} if card_source is None else dict(card_source.row),
                        source_image=None if card_source is None else card_source.image,
                        slot_id=None if card_source is None else card_source.slot_id,
                        rendered=rendered,
                        render_key=key,
                        created_by=created_by,
                    )
                    result.rendered += 1
                    if card_source is None:
                        result.back = finished
                    else:
                        result.cards.append(finished)
                done += 1
                report(done)
        except BaseException:
            # A cancel (raised by the progress callback) or an error: stop what has not started.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    _forget_stale(album=album, design=design, keep={card.position for card in result.cards})
    result.cards.sort(key=lambda card: card.position)
    return result


def _forget_stale(*, album: Album, design: CardDesign, keep: set[int]) -> None:
    """Finished fronts whose slot is gone or has lost its pick go too: exports follow the picks."""
    stale = FinishedCard.objects.filter(album=album, design=design, side=FinishedCard.Side.FRONT).exclude(
        position__in=keep
    )
    for finished in stale.select_related("image"):
        with transaction.atomic():
            image_delete(image=finished.image)


def export_formats_check(formats: Sequence[str], design: CardDesign) -> list[str]:
    chosen = list(dict.fromkeys(formats))
    unknown = [name for name in chosen if name not in EXPORT_FILES]
    if not chosen or unknown:
        raise field_error(
            "formats",
            (f"Unknown export {', '.join(unknown)}; " if unknown else "Choose at least one export; ")
            + f"choose from {', '.join(EXPORT_FILES)}.",
        )
    if "mpc" in chosen:
        try:
            mpc_check(design_spec(design).geometry)
        except ExportError as exc:
            raise field_error("formats", str(exc)) from None
    return chosen


def deck_export(
    *,
    album: Album,
    design: CardDesign,
    formats: Sequence[str],
    output_dir: Path | None = None,
    sources: Sequence[CardSource] | None = None,
    title_template: str = "",
    duplex: bool = True,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    created_by: Any = None,
    force: bool = False,
    back_art: Path | None = None,
) -> ExportResult:
    """Finish the deck (reusing current cards), then write each chosen export into ``output_dir``
    (default ``MEDIA_ROOT/exports/<album>/design-<id>/``)."""
    chosen = export_formats_check(formats, design)
    finish = deck_finish(
        album=album,
        design=design,
        sources=sources,
        title_template=title_template,
        force=force,
        progress=progress,
        workers=workers,
        created_by=created_by,
        back_art=back_art,
    )
    if not finish.cards or finish.back is None:
        raise ApplicationError(
            "No card of this deck has a pick yet, so there is nothing to export."
            if not finish.cards
            else "The card back could not be made."
        )
    result = ExportResult(finish=finish)
    geometry = design_spec(design).geometry
    cards = [ExportCard(card.position, card.title, media_path(card.image.file.name)) for card in finish.cards]
    back = media_path(finish.back.image.file.name)
    folder = output_dir or media_path(f"exports/{album.slug}/design-{design.pk}")
    count = _workers(workers)
    pdf_images = PdfImageCache()
    for name in chosen:

        def step(done: int, total: int, name: str = name) -> None:
            if progress is not None:
                progress(name, done, total)

        out = folder / EXPORT_FILES[name]
        try:
            if name == "zip":
                export_zip(cards, back, out, progress=step)
            elif name == "mpc":
                export_mpc(cards, back, geometry, out, progress=step, workers=count)
            elif name == "drivethru":
                export_drivethru(cards, back, geometry, out, progress=step, images=pdf_images, workers=count)
            elif name.startswith("pnp-"):
                export_pnp(
                    cards,
                    back,
                    geometry,
                    out,
                    paper=name.removeprefix("pnp-"),
                    duplex=duplex,
                    progress=step,
                    images=pdf_images,
                    workers=count,
                )
            else:
                export_tts(cards, back, geometry, out, progress=step, workers=count)
        except ExportError as exc:
            raise field_error("formats", f"{name}: {exc}") from None
        result.files[name] = out
    return result
