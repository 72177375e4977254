"""Make an album's picks into print-ready finished cards in a design.

python manage.py finish_deck ALBUM --design NAME [--title-template '{value} of {suit}'] [--force]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cards.management.commands._deck import add_common_arguments, album_find, design_find, finish_report, progress_bars
from cards.services.finishing import deck_finish
from imagineer.errors import ApplicationError


class Command(BaseCommand):
    help = "Finish a deck: every picked card at print size with frame, indices and title, plus the back."

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        parser.add_argument("--force", action="store_true", help="Render every card again, even unchanged ones.")

    def handle(self, *args, **options) -> None:
        album = album_find(options["album"])
        design = design_find(options["design"], album)
        try:
            with progress_bars(self) as progress:
                result = deck_finish(
                    album=album,
                    design=design,
                    title_template=options["title_template"],
                    force=options["force"],
                    progress=progress,
                    workers=options["workers"],
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        finish_report(self, result)
