"""The worker side of a training run: claim it, train, record progress, register the LoRA.

Runs inside the gpu worker (``training.tasks``) or the ``train_lora`` command. Imports the
trainer (torch, diffusers, peft) only when a run actually executes.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.text import slugify

from albums.services.files import media_path, sha256_file
from generation.models import Lora
from generation.services.loras import lora_register
from imagineer import jobs
from training.models import CheckpointEntry, TrainingRun
from training.services.datasets import caption_with_trigger, kohya_folder_name, tag_frequency

if TYPE_CHECKING:
    from training import trainer

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.25  # seconds between progress writes (cancel is still checked every step)

ProgressCallback = Callable[[TrainingRun], None]


class Outcome(StrEnum):
    RAN = "ran"
    # Another trainer holds the run and wrote progress lately (or just died): try again later.
    BUSY = "busy"
    SKIPPED = "skipped"


class ClaimLost(Exception):
    """Another worker took the run over (this one was thought dead): stop without writing."""


def training_claim(*, run_id: int, task_id: str, worker: str | None = None) -> Outcome:
    """Take the run with the job base's claim (queued, or held by a trainer whose heartbeat went
    stale; at most the attempt limit, then it fails saying why) and start its ``preparing`` phase.

    The task id must match the run's, so a message from before a resume does nothing.
    """
    worker = worker or jobs.worker_name()
    mine = TrainingRun.objects.filter(pk=run_id, task_id=task_id)
    if jobs.claim(mine, task_id=task_id, worker=worker):
        jobs.beat(TrainingRun, [run_id], worker=worker, phase=TrainingRun.Phase.PREPARING)
        return Outcome.RAN
    return Outcome.BUSY if mine.filter(status__in=TrainingRun.IN_PROGRESS).exists() else Outcome.SKIPPED


class _Progress:
    """Trainer hooks that write the run's progress columns (with the heartbeat, a few times a
    second at most) and read its cancel flag at every step."""

    def __init__(self, run: TrainingRun, worker: str, on_progress: ProgressCallback | None) -> None:
        self.run = run
        self.worker = worker
        self.on_progress = on_progress
        self.session_start_step = run.progress_done
        self.session_started = time.monotonic()
        self.throttle = jobs.Throttle(PROGRESS_WRITE_INTERVAL)

    def _beat(self, **fields: Any) -> None:
        if not jobs.beat(TrainingRun, [self.run.pk], worker=self.worker, **fields):
            raise ClaimLost

    def phase(self, phase: str) -> None:
        self._beat(phase=phase)
        self.run.phase = phase
        if phase == TrainingRun.Phase.TRAINING:
            # Dataset preparation (latents) is not training speed.
            self.session_started = time.monotonic()

    def step(self, step: int, loss: float) -> bool:
        run = self.run
        run.progress_done = step
        run.loss_history.append([step, round(loss, 6)])
        elapsed = time.monotonic() - self.session_started
        done = step - self.session_start_step
        if elapsed > 0 and done > 0:
            run.steps_per_second = done / elapsed
            run.eta_seconds = (run.max_steps - step) / run.steps_per_second
        if self.throttle.ready() or step == run.max_steps:
            self.write()
        if self.on_progress:
            self.on_progress(run)
        return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    def write(self) -> None:
        run = self.run
        self._beat(
            progress_done=run.progress_done,
            loss_history=run.loss_history,
            steps_per_second=run.steps_per_second,
            eta_seconds=run.eta_seconds,
        )

    def checkpoint(self, checkpoint: trainer.Checkpoint) -> None:
        root = Path(settings.MEDIA_ROOT).resolve()
        entry: CheckpointEntry = {
            "step": checkpoint.step,
            "file": str(checkpoint.path.resolve().relative_to(root)),
            "samples": [str(sample.resolve().relative_to(root)) for sample in checkpoint.samples],
        }
        self.run.checkpoints = [c for c in self.run.checkpoints if c["step"] != checkpoint.step] + [entry]
        self._beat(checkpoints=self.run.checkpoints)
        self.write()


def _kohya_metadata(run: TrainingRun, *, base_model_hash: str) -> dict[str, str]:
    items = [item["caption"] for item in run.dataset]
    folder = kohya_folder_name(run.trigger_word, 1)
    frequency = tag_frequency(items, run.trigger_word, folder)
    return {
        "ss_output_name": run.name,
        "ss_training_comment": f"Imagineer training run {run.pk}; trigger word: {run.trigger_word}",
        "ss_sd_model_name": run.base_model,
        "ss_new_sd_model_hash": base_model_hash,
        "ss_sd_model_hash": base_model_hash[:8],
        "ss_num_train_images": str(len(items)),
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 1, "img_count": len(items)}}),
        "ss_tag_frequency": json.dumps(frequency),
        "ss_caption_source": run.caption_source,
        "modelspec.title": run.name,
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.trigger_phrase": run.trigger_word,
    }


def _lora_publish(run: TrainingRun, checkpoint_file: str) -> Lora:
    """Copy the final checkpoint into the LoRA library and register it (source training)."""
    # A run resumed after a failure that happened past registration reuses its entry.
    existing = Lora.objects.filter(sha256=sha256_file(media_path(checkpoint_file))).first()
    if existing is not None:
        return existing
    name = run.name
    if Lora.objects.filter(name=name).exists():
        name = f"{name} (training {run.pk})"
    target_dir = Path(settings.LORA_ROOT) / "training"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{slugify(run.name) or 'lora'}-run{run.pk}-step{run.progress_done}.safetensors"
    staging = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(media_path(checkpoint_file), staging)
    staging.replace(target)
    return lora_register(
        path=target, name=name, source="training", created_by=run.created_by, trigger_words=run.trigger_word
    )


def training_execute(
    *,
    run_id: int,
    task_id: str,
    on_progress: ProgressCallback | None = None,
    before_load: Callable[[], None] | None = None,
) -> Outcome:
    """Claim and run the training; anything but RAN means this task did not train.

    ``before_load`` runs after the claim, before the base model is loaded (the gpu worker waits
    there for its resident engine).
    """
    worker = jobs.worker_name()
    outcome = training_claim(run_id=run_id, task_id=task_id, worker=worker)
    if outcome != Outcome.RAN:
        logger.info("Training run %s: task %s did not claim it (%s).", run_id, task_id, outcome)
        return outcome
    run = TrainingRun.objects.select_related("created_by").get(pk=run_id)
    engine = None
    # Loading the model and caching latents write no progress for a while: a thread keeps the
    # heartbeat fresh meanwhile.
    with jobs.Heartbeat(TrainingRun, [run.pk], worker=worker):
        try:
            if before_load is not None:
                before_load()
            from generation.engine.runtime import Engine
            from generation.model_config import model_source
            from training import trainer

            resume = run.last_checkpoint
            resume_step = resume["step"] if resume else 0
            # Progress after the last checkpoint is lost with the process that made it.
            run.progress_done = resume_step
            run.loss_history = [point for point in run.loss_history if point[0] <= resume_step]
            progress = _Progress(run, worker, on_progress)
            progress.write()

            device = trainer.device_pick(settings.IMAGINEER_DEVICE)
            use_fp16 = run.mixed_precision and device.type == "cuda"
            # Our own copy of the base model, freed when training ends: the resident generation
            # pipeline keeps its LoRA cache untouched, at the cost of a second copy in memory meanwhile.
            engine = Engine(
                model_source(),
                torch_threads=settings.IMAGINEER_TORCH_THREADS,
                device=device.type,
                dtype="fp16" if use_fp16 else "fp32",
                attention_slicing=False,
                vae_slicing=False,
            )
            engine.load()
            if not run.base_model_hash and engine.model_hash:
                run.base_model_hash = engine.model_hash
                jobs.beat(TrainingRun, [run.pk], worker=worker, base_model_hash=run.base_model_hash)

            items = [
                trainer.TrainItem(
                    path=media_path(item["file"]), caption=caption_with_trigger(run.trigger_word, item["caption"])
                )
                for item in run.dataset
            ]
            config = trainer.TrainConfig(
                learning_rate=run.learning_rate,
                rank=run.rank,
                alpha=run.alpha,
                dropout=run.dropout,
                max_steps=run.max_steps,
                save_every=run.save_every,
                resolution=run.resolution,
                batch_size=run.batch_size,
                gradient_accumulation=run.gradient_accumulation,
                seed=run.seed,
                mixed_precision=run.mixed_precision,
                sample_prompts=list(run.sample_prompts),
                output_dir=media_path(run.output_dir),
                metadata=_kohya_metadata(run, base_model_hash=run.base_model_hash),
            )
            result = trainer.lora_train(
                pipeline=engine.pipe,
                items=items,
                config=config,
                hooks=trainer.TrainHooks(
                    on_phase=progress.phase, on_step=progress.step, on_checkpoint=progress.checkpoint
                ),
                resume_from=media_path(resume["file"]) if resume else None,
                resume_step=resume_step,
                device=device,
            )
            progress.write()
            if result.stopped:
                jobs.job_cancelled(TrainingRun, [run.pk], worker=worker, eta_seconds=None)
                return Outcome.RAN
            last = run.checkpoints[-1]
            lora = _lora_publish(run, last["file"])
            jobs.job_finish(TrainingRun, [run.pk], worker=worker, lora=lora, eta_seconds=None)
            logger.info("Training run %s completed: %s steps, LoRA %s", run.pk, run.progress_done, lora.pk)
        except ClaimLost:
            logger.warning("Training run %s was taken over by another worker; this one stops.", run_id)
        except jobs.TRANSIENT_DB_ERRORS:
            raise  # the task wrapper retries; the training is not what failed
        except Exception as exc:
            logger.exception("Training run %s failed", run_id)
            jobs.job_fail(TrainingRun, [run.pk], worker=worker, error=f"{type(exc).__name__}: {exc}", eta_seconds=None)
        finally:
            del engine
            gc.collect()
            _cuda_free()
    return Outcome.RAN


def _cuda_free() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
