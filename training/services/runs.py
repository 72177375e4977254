"""Training run workflows: start, cancel, resume (web side; the worker side is ``execute``)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from albums.models import Album
from generation.engine.source import ModelSourceError, model_base
from generation.model_config import model_source
from generation.models import Lora
from imagineer import jobs
from imagineer.errors import ApplicationError, field_error
from imagineer.jobs import enqueue_on_commit
from imagineer.limits import limit_check
from training import models as limits
from training.models import TrainingRun
from training.services.datasets import caption_with_trigger, dataset_collect, trigger_word_validate
from training.tasks import training_run_task

PARAMETER_NAMES = (
    "learning_rate",
    "rank",
    "alpha",
    "dropout",
    "max_steps",
    "save_every",
    "resolution",
    "batch_size",
    "gradient_accumulation",
    "seed",
    "mixed_precision",
)

# (min, max, help) per parameter: the form, the API and the service read the same table.
PARAMETER_HELP = {
    "learning_rate": "AdamW learning rate for the LoRA weights. 1e-4 is a safe start; raise it for few steps.",
    "rank": "LoRA rank (network dim): capacity of the adapter. 4–16 for a style, higher for complex subjects.",
    "alpha": "LoRA alpha: the update is scaled by alpha / rank. Kept in the file, so loaders apply it.",
    "dropout": "Dropout on the LoRA layers during training (0 to 0.9); helps small datasets generalise.",
    "max_steps": "Optimizer steps to train.",
    "save_every": "Write a checkpoint (and sample images) every this many steps.",
    "resolution": "Training resolution in pixels (multiple of 8); images are bucketed by aspect ratio around it.",
    "batch_size": "Images per step. Larger needs more GPU memory.",
    "gradient_accumulation": "Steps whose gradients are summed before one update: a larger effective batch.",
    "seed": "Seed for batches, noise and timesteps: the same seed reproduces the run.",
    "mixed_precision": "fp16 on a CUDA GPU (half the memory, faster); always off on CPU.",
    "caption_source": "Where each image's caption comes from.",
    "sample_prompts": "One prompt per line (at most 8); an image per prompt is rendered at every checkpoint.",
    "trigger_word": "A rare word that will call up the LoRA in prompts; it starts every caption.",
}


class TrainingParameters(TypedDict):
    """The hyperparameters of a run, validated (the TrainingRun columns of the same names)."""

    learning_rate: float
    rank: int
    alpha: float
    dropout: float
    max_steps: int
    save_every: int
    resolution: int
    batch_size: int
    gradient_accumulation: int
    seed: int
    mixed_precision: bool


class TrainingDefaults(TypedDict):
    """What a new run starts from: the server's defaults (no seed: each run draws one)."""

    learning_rate: float
    rank: int
    alpha: float
    dropout: float
    max_steps: int
    save_every: int
    resolution: int
    batch_size: int
    gradient_accumulation: int
    mixed_precision: bool
    caption_source: str
    # Blank when the configured model cannot be trained on.
    base_model: str


def base_model_current() -> str:
    """The base model this server trains on: the generator's model (the built-in tiny one when unset)."""
    try:
        source = model_source()
    except ModelSourceError as exc:
        raise field_error("base_model", str(exc)) from None
    base = model_base(source)
    if base != "sd15":
        raise field_error(
            "base_model", f"The trainer makes SD 1.x LoRAs; the configured model {source.model_id} is {base}."
        )
    return source.model_id


def training_defaults() -> TrainingDefaults:
    return {
        "learning_rate": settings.IMAGINEER_TRAINING_LEARNING_RATE,
        "rank": settings.IMAGINEER_TRAINING_RANK,
        "alpha": settings.IMAGINEER_TRAINING_ALPHA,
        "dropout": settings.IMAGINEER_TRAINING_DROPOUT,
        "max_steps": settings.IMAGINEER_TRAINING_MAX_STEPS,
        "save_every": settings.IMAGINEER_TRAINING_SAVE_EVERY,
        "resolution": settings.IMAGINEER_TRAINING_RESOLUTION,
        "batch_size": settings.IMAGINEER_TRAINING_BATCH_SIZE,
        "gradient_accumulation": settings.IMAGINEER_TRAINING_GRADIENT_ACCUMULATION,
        "mixed_precision": settings.IMAGINEER_TRAINING_MIXED_PRECISION,
        "caption_source": TrainingRun.CaptionSource.AUTO,
        "base_model": _base_model_or_blank(),
    }


def _base_model_or_blank() -> str:
    try:
        return base_model_current()
    except ApplicationError:
        return ""


def _number(
    fields: dict[str, list[str]], params: dict[str, Any], name: str, kind: type, low: float, high: float
) -> Any:
    raw = params[name]
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = kind(raw)
        if kind is int and float(raw) != value:
            raise ValueError
    except (TypeError, ValueError):
        fields.setdefault(name, []).append(
            f"{name.replace('_', ' ').capitalize()} must be a {'whole ' if kind is int else ''}number."
        )
        return None
    if not low <= value <= high:
        fields.setdefault(name, []).append(
            f"{name.replace('_', ' ').capitalize()} must be between {low:g} and {high:g}; got {value:g}."
        )
    return value


def training_parameters_validate(params: Mapping[str, Any]) -> TrainingParameters:
    """Defaults filled in, types coerced and ranges checked; every bad field named at once."""
    unknown = set(params) - set(PARAMETER_NAMES)
    if unknown:
        raise ApplicationError(
            f"Unknown training parameters: {', '.join(sorted(unknown))}.",
            fields={name: ["Unknown parameter."] for name in unknown},
        )
    merged: dict[str, Any] = {**training_defaults(), "seed": secrets.randbelow(2**31)}
    merged.update({name: value for name, value in params.items() if value is not None and value != ""})
    fields: dict[str, list[str]] = {}
    clean: TrainingParameters = {
        "learning_rate": _number(
            fields, merged, "learning_rate", float, limits.LEARNING_RATE_MIN, limits.LEARNING_RATE_MAX
        ),
        "rank": _number(fields, merged, "rank", int, limits.RANK_MIN, limits.RANK_MAX),
        "alpha": _number(fields, merged, "alpha", float, 0.0, 1024.0),
        "dropout": _number(fields, merged, "dropout", float, limits.DROPOUT_MIN, limits.DROPOUT_MAX),
        "max_steps": _number(fields, merged, "max_steps", int, limits.STEPS_MIN, limits.STEPS_MAX),
        "save_every": _number(fields, merged, "save_every", int, 1, limits.STEPS_MAX),
        "resolution": _number(fields, merged, "resolution", int, limits.RESOLUTION_MIN, limits.RESOLUTION_MAX),
        "batch_size": _number(fields, merged, "batch_size", int, limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX),
        "gradient_accumulation": _number(
            fields, merged, "gradient_accumulation", int, limits.ACCUMULATION_MIN, limits.ACCUMULATION_MAX
        ),
        "seed": _number(fields, merged, "seed", int, 0, 2**63 - 1),
        "mixed_precision": merged["mixed_precision"],
    }
    if not isinstance(clean["mixed_precision"], bool):
        fields.setdefault("mixed_precision", []).append("Mixed precision must be true or false.")
    if clean["resolution"] is not None and clean["resolution"] % 8:
        fields.setdefault("resolution", []).append(f"Resolution must be a multiple of 8; got {clean['resolution']}.")
    if fields:
        first = next(iter(fields.values()))
        raise ApplicationError(first[0], fields=fields)
    return clean


def _sample_prompts_clean(prompts: list[str] | str | None, *, trigger_word: str, first_caption: str) -> list[str]:
    if isinstance(prompts, str):
        prompts = prompts.splitlines()
    cleaned = [" ".join(str(prompt).split()) for prompt in prompts or []]
    cleaned = [prompt for prompt in cleaned if prompt]
    if len(cleaned) > limits.SAMPLE_PROMPTS_MAX:
        raise field_error("sample_prompts", f"At most {limits.SAMPLE_PROMPTS_MAX} sample prompts; got {len(cleaned)}.")
    for prompt in cleaned:
        if len(prompt) > settings.IMAGINEER_MAX_PROMPT_CHARS:
            raise field_error(
                "sample_prompts", f"A sample prompt is longer than {settings.IMAGINEER_MAX_PROMPT_CHARS} characters."
            )
    return cleaned or [caption_with_trigger(trigger_word, first_caption)]


def _enqueue(run: TrainingRun) -> None:
    run.task_id = enqueue_on_commit(training_run_task, TrainingRun.objects.filter(pk=run.pk), args=[run.pk])


@transaction.atomic
def training_start(
    *,
    album: Album,
    name: str,
    trigger_word: str,
    created_by: User | None,
    base_model: str | None = None,
    params: Mapping[str, Any] | None = None,
    caption_source: str = TrainingRun.CaptionSource.AUTO,
    sample_prompts: list[str] | str | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Validate everything (album, captions, images, parameters), create the run, queue it on ``gpu``.

    ``enqueue=False`` leaves the run queued for a caller that executes it in-process (``train_lora``).
    """
    limit_check(user=created_by, training=1)
    name = " ".join(name.split())
    if not name:
        raise field_error("name", "Give the LoRA a name.")
    if len(name) > 200:
        raise field_error("name", "The name is longer than 200 characters.")
    if Lora.objects.filter(name=name).exists():
        raise field_error("name", f"The LoRA library already has a LoRA named '{name}'; choose another name.")
    if TrainingRun.objects.filter(name=name).exclude(status__in=TrainingRun.TERMINAL).exists():
        raise field_error("name", f"A training run named '{name}' is already queued or running.")
    trigger_word = trigger_word_validate(trigger_word)
    base_model = (base_model or "").strip() or base_model_current()
    if base_model != base_model_current():
        raise field_error(
            "base_model",
            f"Unknown base model '{base_model}'. This server trains on its generator's model, '{base_model_current()}' "
            "(set by IMAGINEER_MODEL).",
        )
    clean = training_parameters_validate(params or {})
    items = dataset_collect(album=album, caption_source=caption_source)
    prompts = _sample_prompts_clean(sample_prompts, trigger_word=trigger_word, first_caption=items[0].caption)
    run = TrainingRun.objects.create(
        album=album,
        name=name,
        trigger_word=trigger_word,
        base_model=base_model,
        caption_source=caption_source,
        sample_prompts=prompts,
        dataset=[
            {
                "image_id": item.image_id,
                "file": item.file,
                "caption": item.caption,
                "caption_source": item.caption_source,
            }
            for item in items
        ],
        progress_total=clean["max_steps"],
        created_by=created_by,
        **clean,
    )
    if enqueue:
        _enqueue(run)
    return run


def training_runs_resend(run_ids: Sequence[int]) -> None:
    """The reconciler's hook (imagineer.jobs registry): send queued runs whose message was lost again."""
    for run in TrainingRun.objects.filter(pk__in=run_ids, status=TrainingRun.Status.QUEUED):
        _enqueue(run)


@transaction.atomic
def training_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once (its message revoked); a running one stops after its
    current step (the trainer saves a checkpoint there, so resume loses nothing); one whose
    trainer is gone (stale heartbeat) is cancelled at once."""
    result = jobs.cancel(TrainingRun.objects.filter(pk=run.pk))
    run.refresh_from_db()
    if not (result.cancelled or result.cancelling or run.status == TrainingRun.Status.CANCELLING):
        raise ApplicationError(
            f"The run is {run.get_status_display().lower()}; only a queued or running run can be cancelled."
        )
    return run


@transaction.atomic
def training_resume(*, run: TrainingRun) -> TrainingRun:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    limit_check(user=run.created_by, training=1)
    if not TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.RESUMABLE).update(
        status=TrainingRun.Status.QUEUED,
        phase="",
        cancel_requested=False,
        error="",
        finished_at=None,
        heartbeat_at=None,
        worker="",
        attempts=0,
    ):
        run.refresh_from_db()
        raise ApplicationError(
            f"The run is {run.get_status_display().lower()}; only a failed or cancelled run can be resumed."
        )
    _enqueue(run)
    run.refresh_from_db()
    return run
