"""Register every .safetensors LoRA under LORA_ROOT (or a folder inside it) in the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from generation.services.loras import lora_scan
from imagineer.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Scan the LoRA folder and register new .safetensors files (base, rank, alpha and hashes detected). "
        "Exits non-zero, listing them, when some files cannot be registered, unless --skip-broken."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "directory", nargs="?", help=f"Folder inside LORA_ROOT to scan (default: all of {settings.LORA_ROOT})."
        )
        parser.add_argument(
            "--skip-broken",
            action="store_true",
            help="Exit 0 even when some files could not be registered (they are still listed).",
        )

    def handle(self, *args: Any, directory: str | None = None, skip_broken: bool = False, **options: Any) -> None:
        root = Path(settings.LORA_ROOT).resolve()
        folder = Path(directory).resolve() if directory else root
        if not folder.is_relative_to(root):
            raise CommandError(f"{folder} is not inside LORA_ROOT ({root}); copy the files there first.")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        # The raw stream under the command's stderr: tqdm redraws with \r, OutputWrapper would add newlines.
        stream = cast(TextIO, self.stderr._out)
        bar = tqdm(unit="file", desc="Scanning", file=stream, disable=options["verbosity"] == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = lora_scan(directory=folder, progress=progress)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        for lora in result.registered:
            self.stdout.write(f"registered {lora.name}: {lora.get_base_display()}, rank {lora.rank}, {lora.file}")
        for skipped in result.skipped:
            self.stdout.write(f"skipped {skipped}")
        for broken in result.broken:
            self.stderr.write(f"not registered: {broken}")
        summary = (
            f"{len(result.registered)} LoRA(s) registered, {len(result.skipped)} already in the library, "
            f"{len(result.broken)} could not be registered."
        )
        if result.broken and not skip_broken:
            raise CommandError(f"{summary} Fix or remove those files, or pass --skip-broken to accept this.")
        self.stdout.write(self.style.SUCCESS(summary))
