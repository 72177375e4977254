"""Export an album as a kohya dataset zip: ``N_trigger/`` with image + ``.txt`` caption pairs, ``dataset.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from albums.services.files import atomic_write
from imagineer.errors import ApplicationError
from training.management.commands.train_lora import album_find
from training.models import TrainingRun
from training.services.datasets import (
    EXPORT_REPEATS,
    EXPORT_RESOLUTION,
    dataset_export_zip,
    trigger_word_default,
)


class Command(BaseCommand):
    help = (
        "Export an album (id or slug) as a kohya training dataset zip: N_trigger/ with image + .txt caption "
        "pairs (images kohya cannot read converted to PNG) and dataset.toml, kohya's dataset config."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("album", help="Album id or slug.")
        parser.add_argument(
            "--trigger",
            help="Trigger word: folder name and first word of every caption (default: the album's slug, '-' as '_').",
        )
        parser.add_argument("--output", "-o", help="Zip file to write (default: <album-slug>-dataset.zip).")
        parser.add_argument("--repeats", type=int, default=EXPORT_REPEATS, help="kohya repeats (the N of N_trigger/).")
        parser.add_argument(
            "--resolution",
            type=int,
            default=EXPORT_RESOLUTION,
            help=f"Training resolution written into dataset.toml (default {EXPORT_RESOLUTION}).",
        )
        parser.add_argument(
            "--caption-source",
            default=TrainingRun.CaptionSource.AUTO,
            choices=TrainingRun.CaptionSource.values,
            help="Where captions come from: auto (SD-training caption, default caption, then prompt) or one source.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        album = album_find(options["album"])
        output = Path(options["output"] or f"{album.slug}-dataset.zip").resolve()
        # The raw stream under the command's stderr: tqdm redraws with \r, OutputWrapper would add newlines.
        bar = tqdm(
            total=None,
            unit="image",
            desc="Exporting",
            file=cast(TextIO, self.stderr._out),
            disable=options["verbosity"] == 0,
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            with atomic_write(output) as handle:
                count = dataset_export_zip(
                    album=album,
                    trigger_word=options["trigger"] or trigger_word_default(album),
                    handle=handle,
                    caption_source=options["caption_source"],
                    repeats=options["repeats"],
                    resolution=options["resolution"],
                    progress=progress,
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(f"Wrote {count} images with captions to {output}"))
