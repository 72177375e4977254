"""What finish_deck and export_deck share: finding the album and design, progress bars, the report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from tqdm import tqdm

from albums.models import Album
from cards.models import CardDesign
from cards.services.finishing import FinishResult, ProgressCallback


def add_common_arguments(parser: CommandParser) -> None:
    parser.add_argument("album", help="Album slug, name or id.")
    parser.add_argument("--design", required=True, help="Card design id or name.")
    parser.add_argument(
        "--title-template",
        default="",
        help="Card titles (file names) from the row, e.g. '{value} of {suit}'; default: the row's first value.",
    )
    parser.add_argument("--workers", type=int, default=None, help="Render threads (default: one per CPU).")


def album_find(key: str) -> Album:
    lookup = Q(slug=key) | Q(name=key) | (Q(pk=int(key)) if key.isdigit() else Q())
    albums = list(Album.objects.filter(lookup)[:2])
    if len(albums) != 1:
        raise CommandError(f"No album {key!r}." if not albums else f"Several albums match {key!r}; use its id.")
    return albums[0]


def design_find(key: str, album: Album) -> CardDesign:
    designs = CardDesign.objects.select_related("template")
    lookup = Q(pk=int(key)) if key.isdigit() else Q(name=key)
    matches = list(designs.filter(lookup))
    if len(matches) > 1:
        run = album.generation_runs.order_by("created_at", "id").first()
        matches = [design for design in matches if run is not None and design.template_id == run.template_id]
    if len(matches) != 1:
        known = ", ".join(f"{design.pk}: {design.name}" for design in designs[:20]) or "none"
        raise CommandError(f"No single card design {key!r}. Designs: {known}.")
    return matches[0]


@contextmanager
def progress_bars(command: BaseCommand) -> Iterator[ProgressCallback]:
    """One tqdm bar per stage (finish, then each export), on stderr."""
    bars: dict[str, tqdm] = {}

    def callback(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="card", file=command.stderr)
        bar.total = total
        bar.update(max(0, done - bar.n))

    try:
        yield callback
    finally:
        for bar in bars.values():
            bar.close()


def finish_report(command: BaseCommand, result: FinishResult) -> None:
    command.stdout.write(
        f"{len(result.cards)} cards finished ({result.rendered} rendered, {result.reused} unchanged), back included."
    )
    if result.missing:
        listed = ", ".join(f"{source.index} {source.title}" for source in result.missing)
        command.stdout.write(command.style.WARNING(f"{len(result.missing)} without a pick, not finished: {listed}"))
    if result.failed:
        for source, message in result.failed:
            command.stderr.write(f"card {source.index} ({source.title}): {message}")
        raise CommandError(f"{len(result.failed)} cards could not be finished.")
