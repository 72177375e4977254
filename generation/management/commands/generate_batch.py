"""Start a batch run from a template and follow it with a progress bar.

python manage.py generate_batch zodiac --theme "art deco" [--album-name NAME] [--wait]
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from generation.models import BatchGenerationRun, BatchTemplate
from generation.services.runs import run_cancel, run_start
from imagineer.errors import ApplicationError, command_error


class Command(BaseCommand):
    help = "Generate a template's album with a theme; --wait follows it and fails unless it completes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("template", help="Template slug, name or id.")
        parser.add_argument("--theme", default="", help='The theme every prompt carries, e.g. "art deco".')
        parser.add_argument("--album-name", default=None, help="Name of the new album (default: template + theme).")
        parser.add_argument("--steps", type=int, help="Override the template's denoising steps.")
        parser.add_argument("--width", type=int, help="Override the template's width (a multiple of 8).")
        parser.add_argument("--height", type=int, help="Override the template's height (a multiple of 8).")
        parser.add_argument("--guidance-scale", type=float, help="Override the template's CFG scale.")
        parser.add_argument("--seed", type=int, help="First seed (default: random).")
        parser.add_argument(
            "--seed-policy",
            choices=["random", "fixed", "increment"],
            help="Seeds per row: random, the same for all (fixed), or --seed + row (increment).",
        )
        parser.add_argument("--wait", action="store_true", help="Follow the run; exit non-zero unless it completes.")
        parser.add_argument(
            "--timeout", type=float, default=24 * 3600, help="With --wait: stop following after this many seconds."
        )

    def handle(self, *args, **options) -> None:
        key = options["template"]
        lookup = Q(slug=key) | Q(name=key) | (Q(pk=int(key)) if key.isdigit() else Q())
        template = BatchTemplate.objects.filter(lookup).first()
        if template is None:
            known = ", ".join(BatchTemplate.objects.values_list("slug", flat=True)) or "none (load_builtin_templates)"
            raise CommandError(f"No template {key!r}. Templates: {known}.")
        overrides = {
            name: options[name]
            for name in ("steps", "width", "height", "guidance_scale", "seed", "seed_policy")
            if options[name] is not None
        }
        try:
            run = run_start(
                template=template, theme=options["theme"], album_name=options["album_name"], overrides=overrides
            )
        except ApplicationError as exc:
            raise command_error(exc) from None
        assert run.album is not None, "run_start makes the run's album first"
        self.stdout.write(f"Run {run.pk} started: {run.total_items} images into album {run.album.name!r}.")
        if not options["wait"]:
            return
        deadline = time.monotonic() + options["timeout"]
        with tqdm(total=run.total_items, desc=f"run {run.pk}", unit="img", file=self.stderr) as bar:
            try:
                while True:
                    run.refresh_from_db()
                    bar.update(max(0, run.completed_items + run.failed_items - bar.n))
                    bar.set_postfix(failed=run.failed_items, refresh=False)
                    if run.is_finished:
                        break
                    if time.monotonic() > deadline:
                        raise CommandError(f"Run {run.pk} did not finish within {options['timeout']:.0f}s.")
                    time.sleep(0.5)
            except KeyboardInterrupt:
                run_cancel(run=run)
                raise CommandError(f"Interrupted: run {run.pk} cancelled.") from None
        message = (
            f"Run {run.pk} {run.status}: {run.completed_items}/{run.total_items} images, {run.failed_items} failed."
        )
        if run.status != BatchGenerationRun.Status.COMPLETED:
            raise CommandError(message)
        self.stdout.write(self.style.SUCCESS(message))
