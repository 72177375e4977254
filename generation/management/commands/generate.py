"""Generate one image, like the original's examples/generate.py, through the job queue.

    python manage.py generate --prompt "a castle" --lora cards:0.6 --lora tarot:0.3 \
        --width 512 --height 768 --steps 25 --seed 42 --output out.png

Submits a GenerationJob (a gpu worker must be running), waits for it, and copies the PNG
and its JSON sidecar to --output.
"""

from __future__ import annotations

import shutil
import time
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from albums.services.files import media_path
from generation.models import GenerationJob, Lora
from generation.services.jobs import job_cancel, job_submit
from generation.services.templates import lora_weight_parse
from imagineer.errors import ApplicationError, command_error


def _lora_arg(value: str) -> tuple[str, str]:
    name, _, weight = value.rpartition(":")
    if not name:
        return value, ""
    return name, weight


class Command(BaseCommand):
    help = "Generate one image through a gpu worker and write it (and its JSON sidecar) to --output."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--prompt", required=True, help="What to draw (A1111 prompt syntax).")
        parser.add_argument("--negative-prompt", default="", help="What to avoid.")
        parser.add_argument(
            "--lora", action="append", default=[], metavar="NAME:WEIGHT", help="A library LoRA; repeat to stack."
        )
        parser.add_argument("--width", type=int, default=512, help="Pixels, a multiple of 8 (default 512).")
        parser.add_argument("--height", type=int, default=512, help="Pixels, a multiple of 8 (default 512).")
        parser.add_argument("--steps", type=int, default=25, help="Denoising steps (default 25).")
        parser.add_argument(
            "--guidance-scale", type=float, default=8.0, help="CFG scale: how closely to follow the prompt (default 8)."
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed for the same image again (default: random).")
        parser.add_argument(
            "--scheduler",
            default=None,
            help="Sampler: dpmsolver++, dpmsolver++-karras, euler, euler-a, ddim, ... (default: IMAGINEER_SCHEDULER).",
        )
        parser.add_argument("--output", required=True, help="Where to write the PNG (the sidecar goes beside it).")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds to wait for the job.")

    def handle(self, *args, **options) -> None:
        loras: list[tuple[Lora, Decimal]] = []
        try:
            for value in options["lora"]:
                name, weight = _lora_arg(value)
                lora = Lora.objects.filter(name=name).first()
                if lora is None:
                    raise CommandError(f"No LoRA named {name!r} in the library (python manage.py register_loras).")
                loras.append((lora, lora_weight_parse(weight, field="lora") if weight else lora.default_weight))
            job = job_submit(
                prompt=options["prompt"],
                negative_prompt=options["negative_prompt"],
                width=options["width"],
                height=options["height"],
                steps=options["steps"],
                guidance_scale=options["guidance_scale"],
                seed=options["seed"],
                loras=loras,
                scheduler=options["scheduler"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from None
        self.stdout.write(f"Job {job.pk} queued (seed {job.seed}); waiting for a gpu worker...")
        deadline = time.monotonic() + options["timeout"]
        with tqdm(total=job.steps, desc=f"job {job.pk}", unit="step", file=self.stderr) as bar:
            try:
                while not job.is_finished:
                    if time.monotonic() > deadline:
                        raise CommandError(f"Job {job.pk} did not finish within {options['timeout']:.0f}s.")
                    time.sleep(0.2)
                    job.refresh_from_db()
                    bar.update(max(0, job.current_step - bar.n))
            except KeyboardInterrupt:
                job_cancel(job=job)
                raise CommandError(f"Interrupted: job {job.pk} cancelled.") from None
        if job.status != GenerationJob.Status.SUCCEEDED:
            raise CommandError(f"Job {job.pk} {job.status}: {job.error or 'no image'}")
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        if job.result_image is None:
            raise CommandError(f"Job {job.pk} succeeded without an image.")
        source = media_path(job.result_image.file.name)
        shutil.copyfile(source, output)
        shutil.copyfile(source.with_suffix(".json"), output.with_suffix(".json"))
        self.stdout.write(self.style.SUCCESS(f"Wrote {output} and {output.with_suffix('.json')}"))
