"""The gpu-queue step of a finishing job: the generated card back, and the hires pass.

**Back**: when the design has a back prompt and no uploaded back image, the back is generated
from the prompt at the card's aspect with the deck run's size, steps and guidance, and a seed
drawn from the deck and the prompt; it is written once under ``finished/<album>/backs/`` (named
by everything that made it) and reused by every later finishing of the deck.

**Hires** (A1111's hires fix): each pick is upscaled (Lanczos) by the job's scale and repainted by img2img at its low
denoising strength, with the prompt, negative prompt, seed, steps, guidance, sampler and LoRAs
of the pick's own recipe, on the gpu worker's resident pipeline. The output is written once per
(pick, scale, denoise, model) under ``finished/<album>/hires/`` with the recipe twice, as every
generated PNG: an A1111 ``parameters`` chunk (with its ``Hires upscale`` keys) and a JSON sidecar.
A later job with the same settings reuses the file.

Then the job is handed to the default queue. Imported by ``cards.tasks`` inside the task body
only: web processes never load torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from typing import Any

from django.utils import timezone
from PIL import PngImagePlugin

from albums.services.files import atomic_write, media_path
from cards.models import FinishingJob
from cards.render.imageio import ImageInputError, image_open_checked
from cards.services.designs import design_spec
from cards.services.jobs import STAGE_BACK, STAGE_HIRES, back_wanted, finishing_hand_on
from cards.services.sources import album_card_sources
from generation.engine.hires import HiresRequest, hires_fix, hires_infotext_fields, hires_size, hires_steps
from generation.engine.png import quote
from generation.engine.runtime import (
    BatchSettings,
    EngineError,
    GenerationCancelled,
    ImageRequest,
    LoraRef,
    library_versions,
)
from generation.engine.schedulers import DEFAULT_SCHEDULER
from generation.infotext import recipe_infotext
from generation.models import Lora
from generation.services.loras import lora_path
from generation.worker import engine_get
from imagineer import jobs

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.25
DEFAULT_STEPS, DEFAULT_GUIDANCE = 20, 7.0


def _lora_refs(recipe: dict[str, Any]) -> tuple[LoraRef, ...]:
    wanted = recipe.get("loras") or []
    by_sha = {lora.sha256: lora for lora in Lora.objects.filter(sha256__in=[entry["sha256"] for entry in wanted])}
    refs = []
    for entry in wanted:
        lora = by_sha.get(entry["sha256"])
        if lora is None or not lora_path(lora).is_file():
            raise EngineError(f"LoRA {entry['name']!r} of the pick's recipe is no longer in the library.")
        refs.append(
            LoraRef(
                name=lora.name, sha256=lora.sha256, path=lora_path(lora), weight=float(entry["weight"]), base=lora.base
            )
        )
    return tuple(refs)


def _infotext(recipe: dict[str, Any], hires: dict[str, Any]) -> str:
    fields = hires_infotext_fields(scale=hires["scale"], denoise=hires["denoise"], steps=hires["steps"])
    extra = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items())
    try:
        base = recipe_infotext(recipe)
    except (KeyError, TypeError):  # an uploaded pick has no generation recipe: the pass's own values
        base = f"{recipe.get('prompt', '')}\nSteps: {hires['steps']}, Seed: {recipe.get('seed', 0)}"
    return f"{base}, {extra}"


def _store(relative: str, image: Any, recipe: dict[str, Any], hires: dict[str, Any]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", _infotext(recipe, hires))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    path = media_path(relative)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    sidecar = {**recipe, "hires": hires, "hires_of_sha256": hires["source_sha256"], "libraries": library_versions()}
    with atomic_write(path.with_suffix(".json")) as handle:
        handle.write(json.dumps(sidecar, indent=2, sort_keys=True, default=str).encode())


def gpu_run(*, job_id: int, task_id: str) -> dict:
    """Claim the job, make its back and hires art as needed, hand it on to the default queue."""
    worker = jobs.worker_name()
    if not jobs.claim_one(FinishingJob, job_id, task_id=task_id, worker=worker):
        return {"claimed": False}
    job = FinishingJob.objects.select_related("album", "design", "design__template").get(pk=job_id)
    picked = [source for source in album_card_sources(album=job.album) if source.image is not None] if job.hires else []
    outputs: dict[str, str] = {}
    back = ""
    throttle = jobs.Throttle(PROGRESS_INTERVAL)

    def stop_check(stage: str, done: int, total: int) -> None:
        if not throttle.ready():
            return
        held = jobs.beat(FinishingJob, [job.pk], worker=worker, stage=stage, progress_done=done, progress_total=total)
        if not held or jobs.cancel_requested(FinishingJob, [job.pk]):
            raise GenerationCancelled

    try:
        engine = engine_get()
        engine.load()
        if back_wanted(job.design):
            back = _back_make(job, engine, stop=lambda step, steps, indices: stop_check(STAGE_BACK, step, steps))
        model_tag = (engine.model_hash or engine.source.model_id)[:10]
        for done, source in enumerate(picked):
            assert source.image is not None
            throttle.reset()
            stop_check(STAGE_HIRES, done, len(picked))
            tag = f"x{job.hires_scale:g}-d{job.hires_denoise:g}-{model_tag}"
            relative = f"finished/{job.album.slug}/hires/{source.image.sha256[:16]}-{tag}.png"
            if not media_path(relative).is_file():
                _hires_one(
                    job,
                    engine,
                    source,
                    relative,
                    stop=lambda step, steps, indices, done=done: stop_check(STAGE_HIRES, done, len(picked)),
                )
            outputs[str(source.image.pk)] = relative
    except GenerationCancelled:
        jobs.job_cancelled(FinishingJob, [job.pk], worker=worker)
        return {"claimed": True, "cancelled": True}
    except (EngineError, ImageInputError, OSError) as exc:
        jobs.job_fail(FinishingJob, [job.pk], error=f"The gpu step failed: {exc}", worker=worker)
        return {"claimed": True, "failed": str(exc)}
    except jobs.TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        logger.exception("The gpu step of finishing job %s failed", job.pk)
        jobs.job_fail(FinishingJob, [job.pk], error=f"The gpu step failed: {type(exc).__name__}: {exc}", worker=worker)
        return {"claimed": True, "failed": str(exc)}
    if picked:
        jobs.beat(FinishingJob, [job.pk], worker=worker, progress_done=len(picked), progress_total=len(picked))
    handed = finishing_hand_on(job_id=job.pk, worker=worker, hires=outputs, back=back)
    return {"claimed": True, "hires": len(outputs), "back": back, "handed_on": handed}


def _deck_settings(job: FinishingJob) -> dict[str, Any]:
    """The deck run's generation settings (size, steps, guidance, negative prompt), else the template's."""
    template = job.design.template
    run = job.album.generation_runs.order_by("created_at", "id").first()
    overrides = dict(run.overrides or {}) if run is not None else {}
    return {
        "width": int(overrides.get("width") or template.width),
        "height": int(overrides.get("height") or template.height),
        "steps": int(overrides.get("steps") or template.steps),
        "guidance_scale": float(overrides.get("guidance_scale") or template.guidance_scale),
        "negative_prompt": str(overrides.get("negative_prompt") or template.negative_prompt or ""),
    }


def _back_make(job: FinishingJob, engine: Any, *, stop: Any) -> str:
    """Generate the deck's back from the design's prompt (or reuse the one made before)."""
    design = job.design
    params = _deck_settings(job)
    trim = design_spec(design).geometry.canvas_px
    width = max(64, round(params["width"] / 8) * 8)
    height = max(64, round(width * trim[1] / trim[0] / 8) * 8)
    prompt = design.back_prompt.strip()
    seed = int(hashlib.sha256(f"{job.album_id}:{prompt}".encode()).hexdigest()[:8], 16)
    identity = json.dumps([prompt, params, width, height, seed, engine.model_hash], sort_keys=True)
    relative = f"finished/{job.album.slug}/backs/{hashlib.sha256(identity.encode()).hexdigest()[:24]}.png"
    if media_path(relative).is_file():
        return relative
    batch = BatchSettings(width=width, height=height, steps=params["steps"], guidance_scale=params["guidance_scale"])
    (generated,) = engine.generate(
        [ImageRequest(prompt, params["negative_prompt"], seed)], batch, on_step=stop, batch_size=1
    )
    recipe = {
        "generator": "imagineer",
        "card_back": {"album": job.album_id, "design": design.pk},
        "model": {"id": engine.source.model_id, "sha256": engine.model_hash, "kind": engine.source.kind},
        "loras": [],
        "prompt": prompt,
        "negative_prompt": params["negative_prompt"],
        "seed": seed,
        "scheduler": batch.scheduler,
        "steps": batch.steps,
        "guidance_scale": batch.guidance_scale,
        "width": width,
        "height": height,
        "libraries": library_versions(),
    }
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", recipe_infotext(recipe))
    buffer = io.BytesIO()
    generated.image.save(buffer, format="PNG", pnginfo=info)
    path = media_path(relative)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    with atomic_write(path.with_suffix(".json")) as handle:
        handle.write(json.dumps(recipe, indent=2, sort_keys=True).encode())
    return relative


def _hires_one(job: FinishingJob, engine: Any, source: Any, relative: str, *, stop: Any) -> None:
    image = source.image
    recipe: dict[str, Any] = dict(image.recipe or {})
    steps = int(recipe.get("steps") or DEFAULT_STEPS)
    with image_open_checked(media_path(image.file.name)) as opened:
        picture = opened.convert("RGB")
    started = timezone.now()
    output = hires_fix(
        engine,
        HiresRequest(
            image=picture,
            prompt=str(recipe.get("prompt") or image.prompt or ""),
            negative_prompt=str(recipe.get("negative_prompt") or image.negative_prompt or ""),
            seed=int(recipe.get("seed") or 0),
        ),
        scale=job.hires_scale,
        denoise=job.hires_denoise,
        steps=steps,
        guidance_scale=float(recipe.get("guidance_scale") or DEFAULT_GUIDANCE),
        scheduler=str(recipe.get("scheduler") or DEFAULT_SCHEDULER),
        loras=_lora_refs(recipe),
        on_step=stop,
    )
    width, height = hires_size(picture.width, picture.height, job.hires_scale)
    hires = {
        "scale": job.hires_scale,
        "denoise": job.hires_denoise,
        "steps": hires_steps(steps, job.hires_denoise),
        "upscaler": "Lanczos",
        "width": width,
        "height": height,
        "source_image": image.pk,
        "source_sha256": image.sha256,
        "model_sha256": engine.model_hash,
        "seconds": round((timezone.now() - started).total_seconds(), 3),
    }
    _store(relative, output, recipe, hires)
