"""Build the built-in tiny SD1.5-shaped model (random weights: it makes noise)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build the tiny random-weight SD1.5-shaped pipeline used when IMAGINEER_MODEL is unset."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", help=f"Target folder (default {settings.IMAGINEER_TINY_MODEL_DIR}).")
        parser.add_argument("--force", action="store_true", help="Rebuild even if the folder is up to date.")

    def handle(self, *args, path: str | None = None, force: bool = False, **options) -> None:
        from generation.engine.tiny import tiny_model_build, tiny_model_ready

        folder = Path(path) if path else Path(settings.IMAGINEER_TINY_MODEL_DIR)
        if tiny_model_ready(folder) and not force:
            self.stdout.write(f"Tiny model already built at {folder}.")
            return
        started = time.perf_counter()
        tiny_model_build(folder, force=force)
        size = sum(item.stat().st_size for item in folder.rglob("*") if item.is_file())
        self.stdout.write(
            self.style.SUCCESS(
                f"Built the tiny model at {folder} ({size / 1e6:.1f} MB, {time.perf_counter() - started:.1f}s). "
                "It has random weights: it makes noise, not pictures."
            )
        )
