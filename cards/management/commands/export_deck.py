"""Finish a deck (unchanged cards are kept) and write printer-ready exports.

python manage.py export_deck ALBUM --design NAME --format zip,mpc,drivethru,pnp-a4,pnp-letter,tts [--output DIR]
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from cards.management.commands._deck import add_common_arguments, album_find, design_find, finish_report, progress_bars
from cards.services.finishing import EXPORT_FILES, deck_export
from imagineer.errors import ApplicationError, command_error


class Command(BaseCommand):
    help = "Export a finished deck: card zip, MakePlayingCards, DriveThruCards PDF, print-and-play PDFs, TTS sheets."

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        parser.add_argument(
            "--format",
            default=",".join(EXPORT_FILES),
            help=f"Comma-separated exports from: {', '.join(EXPORT_FILES)} (default: all).",
        )
        parser.add_argument(
            "--output", type=Path, default=None, help="Folder for the files (default: under MEDIA_ROOT)."
        )
        parser.add_argument("--no-duplex", action="store_true", help="Print-and-play sheets without backs pages.")

    def handle(self, *args, **options) -> None:
        album = album_find(options["album"])
        design = design_find(options["design"], album)
        formats = [name.strip() for name in options["format"].split(",") if name.strip()]
        try:
            with progress_bars(self) as progress:
                result = deck_export(
                    album=album,
                    design=design,
                    formats=formats,
                    output_dir=options["output"],
                    title_template=options["title_template"],
                    duplex=not options["no_duplex"],
                    progress=progress,
                    workers=options["workers"],
                )
        except ApplicationError as exc:
            raise command_error(exc) from None
        finish_report(self, result.finish)
        for name, path in result.files.items():
            self.stdout.write(f"{name}: {path}")
        self.stdout.write(self.style.SUCCESS(f"{len(result.files)} exports written."))
