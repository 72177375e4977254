"""Train a LoRA from an album, with a progress bar.

By default the run executes in this process (it is still a TrainingRun, claimed like a task,
so no worker also takes it); ``--enqueue`` queues it on the gpu queue instead and follows its
progress from the database.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, TextIO, cast

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from albums.models import Album
from imagineer.errors import ApplicationError, command_error
from training.models import TrainingRun
from training.services.execute import training_execute
from training.services.runs import PARAMETER_NAMES, training_start


def album_find(ref: str) -> Album:
    album = Album.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    album = album or Album.objects.filter(slug=ref).first()
    if album is None:
        raise CommandError(f"No album with id or slug {ref!r}.")
    return album


class Command(BaseCommand):
    help = "Train an SD1.5 LoRA from an album's images and captions; registers it in the LoRA library."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("album", help="Album id or slug.")
        parser.add_argument("--name", required=True, help="The LoRA's name in the library.")
        parser.add_argument("--trigger", help="Trigger word (default: derived from the name).")
        parser.add_argument("--user", help="Username to run as (needs the training permission; default: a superuser).")
        parser.add_argument("--steps", dest="max_steps", type=int, help="Optimizer steps to train.")
        parser.add_argument(
            "--save-every", dest="save_every", type=int, help="Write a checkpoint (and samples) every N steps."
        )
        parser.add_argument("--learning-rate", dest="learning_rate", type=float, help="AdamW learning rate.")
        parser.add_argument("--rank", type=int, help="LoRA rank (kohya's network_dim).")
        parser.add_argument("--alpha", type=float, help="LoRA alpha: the update is scaled by alpha/rank.")
        parser.add_argument("--dropout", type=float, help="LoRA dropout (0 to 1).")
        parser.add_argument("--resolution", type=int, help="Training resolution; images are bucketed by aspect.")
        parser.add_argument("--batch-size", dest="batch_size", type=int, help="Images per step.")
        parser.add_argument(
            "--gradient-accumulation", dest="gradient_accumulation", type=int, help="Micro-batches per optimizer step."
        )
        parser.add_argument("--seed", type=int, help="Seed: the same seed and data train the same LoRA.")
        parser.add_argument(
            "--no-mixed-precision",
            dest="mixed_precision",
            action="store_false",
            default=None,
            help="Train in fp32 on a GPU too (a CPU always does).",
        )
        parser.add_argument(
            "--caption-source",
            default=TrainingRun.CaptionSource.AUTO,
            choices=TrainingRun.CaptionSource.values,
            help="Where captions come from: auto (SD-training caption, default caption, then prompt) or one source.",
        )
        parser.add_argument("--sample-prompt", dest="sample_prompts", action="append", help="Repeat for several.")
        parser.add_argument("--enqueue", action="store_true", help="Queue on the gpu queue and follow it.")
        parser.add_argument(
            "--timeout", type=float, default=24 * 3600, help="With --enqueue: stop following after this many seconds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        album = album_find(options["album"])
        user = self._user(options["user"])
        trigger = options["trigger"] or "".join(ch for ch in options["name"].lower() if ch.isalnum() or ch == "_")[:40]
        try:
            run = training_start(
                album=album,
                name=options["name"],
                trigger_word=trigger,
                caption_source=options["caption_source"],
                sample_prompts=options["sample_prompts"],
                params={name: options[name] for name in PARAMETER_NAMES if options.get(name) is not None},
                created_by=user,
                enqueue=options["enqueue"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from None
        self.stdout.write(f"Training run {run.pk}: {len(run.dataset)} images, {run.max_steps} steps, seed {run.seed}.")
        # The raw stream under the command's stderr: tqdm redraws with \r, OutputWrapper would add newlines.
        bar = tqdm(
            total=run.max_steps,
            unit="step",
            desc=run.name,
            file=cast(TextIO, self.stderr._out),
            disable=options["verbosity"] == 0,
        )
        try:
            if options["enqueue"]:
                run = self._follow(run, bar, options["timeout"])
            else:
                # The command takes the run itself: a fresh task id that no queued message carries.
                task_id = f"command-{uuid.uuid4()}"
                TrainingRun.objects.filter(pk=run.pk).update(task_id=task_id)
                training_execute(run_id=run.pk, task_id=task_id, on_progress=lambda r: self._bar(bar, r))
                run.refresh_from_db()
        finally:
            bar.close()
        if run.status != TrainingRun.Status.COMPLETED:
            raise CommandError(f"Training run {run.pk} ended {run.status}: {run.error or 'no error recorded'}")
        lora = run.lora
        assert lora is not None, "a completed run has registered its LoRA"
        self.stdout.write(
            self.style.SUCCESS(f"Done: LoRA '{lora.name}' ({lora.file}), final loss {run.last_loss:.4f}.")
        )

    def _user(self, username: str | None) -> User:
        users = User.objects
        user = (
            users.filter(username=username).first()
            if username
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError("No such user; pass --user NAME (a creator or curator) or create a superuser first.")
        return user

    @staticmethod
    def _bar(bar: tqdm, run: TrainingRun) -> None:
        bar.update(run.current_step - bar.n)
        if run.last_loss is not None:
            bar.set_postfix(loss=f"{run.last_loss:.4f}", refresh=False)

    def _follow(self, run: TrainingRun, bar: tqdm, timeout: float) -> TrainingRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            self._bar(bar, run)
            if run.is_finished:
                return run
            time.sleep(1)
        raise CommandError(f"Run {run.pk} still {run.status} after {timeout:.0f}s; it goes on in the worker.")
