"""Register every .safetensors LoRA under LORA_ROOT (or a folder inside it) in the library."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.services.loras import lora_scan
from imagineer.errors import ApplicationError


class Command(BaseCommand):
    help = "Scan the LoRA folder and register new .safetensors files (base, rank and sha256 detected)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", nargs="?", help=f"Folder inside LORA_ROOT (default {settings.LORA_ROOT}).")

    def handle(self, *args, directory: str | None = None, **options) -> None:
        root = Path(settings.LORA_ROOT).resolve()
        folder = Path(directory).resolve() if directory else root
        if not folder.is_relative_to(root):
            raise CommandError(f"{folder} is not inside LORA_ROOT ({root}); copy the files there first.")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        try:
            registered, problems = lora_scan(directory=folder)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for lora in registered:
            self.stdout.write(f"registered {lora.name}: {lora.get_base_display()}, rank {lora.rank}, {lora.file}")
        for problem in problems:
            self.stderr.write(problem)
        self.stdout.write(self.style.SUCCESS(f"{len(registered)} LoRA(s) registered, {len(problems)} skipped."))
