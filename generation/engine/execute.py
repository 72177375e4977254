"""What a gpu task does with a chunk of jobs: claim, generate in batches, write files, record.

Runs inside the gpu worker process, next to the resident engine. Files are complete (written
to a temporary name, renamed) before the Image row that points at them is created.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import time
from collections.abc import Sequence

from django.utils import timezone
from PIL import PngImagePlugin

from albums.services.files import atomic_write, media_path
from generation.engine.img2img import VaryRequest, img2img_generate
from generation.engine.runtime import (
    BatchSettings,
    Engine,
    EngineError,
    GenerationCancelled,
    ImageRequest,
    LoraRef,
    engine_get,
    library_versions,
)
from generation.engine.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generation.infotext import recipe_infotext
from generation.models import EngineWorker, GenerationJob, Lora
from generation.services import jobs as job_services
from generation.services.decks import title_file_stem
from generation.services.runs import run_mark_running, run_refresh

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def engine_status_write(engine: Engine, *, hostname: str | None = None) -> None:
    info = engine.info()
    EngineWorker.objects.update_or_create(
        hostname=hostname or worker_name(),
        defaults={
            "model_id": info["model_id"],
            "is_noise_model": info["is_noise_model"],
            "device": info["device"],
            "loaded": info["loaded"],
            "info": info,
            "last_seen": timezone.now(),
        },
    )


def _lora_refs(job: GenerationJob) -> tuple[LoraRef, ...]:
    from generation.services.loras import lora_path

    refs = []
    by_sha = {lora.sha256: lora for lora in Lora.objects.filter(sha256__in=[e["sha256"] for e in job.lora_stack])}
    for entry in job.lora_stack:
        lora = by_sha.get(entry["sha256"])
        if lora is None:
            raise EngineError(f"LoRA {entry['name']!r} (sha256 {entry['sha256'][:12]}) is no longer in the library.")
        path = lora_path(lora)
        if not path.is_file():
            raise EngineError(f"LoRA {lora.name!r}: its file {lora.file} is missing from the LoRA folder.")
        refs.append(
            LoraRef(name=lora.name, sha256=lora.sha256, path=path, weight=float(entry["weight"]), base=lora.base)
        )
    return tuple(refs)


def _output_name(job: GenerationJob) -> str:
    if job.album is not None and job.row_index is not None:
        label = title_file_stem(job.prompt_parts.get("title") or "", limit=40) or "card"
        if job.run_id is not None:
            return f"outputs/{job.album.slug}/{job.row_index + 1:02d}-{label}.png"
        # A further take of a card (re-roll, variation): beside the run's, told apart by its job.
        return f"outputs/{job.album.slug}/{job.row_index + 1:02d}-{label}-{job.pk:06d}.png"
    label = title_file_stem(job.prompt, limit=40) or "image"
    folder = job.album.slug if job.album is not None else "single"
    return f"outputs/{folder}/{job.pk:06d}-{label}.png"


def _recipe(job: GenerationJob, engine: Engine, generated, refs: Sequence[LoraRef]) -> dict:
    scheduler = job.scheduler or DEFAULT_SCHEDULER
    return {
        "generator": "imagineer",
        "job_id": job.pk,
        "run_id": job.run_id,
        "row_index": job.row_index,
        "model": {
            "id": engine.source.model_id,
            "kind": engine.source.kind,
            "sha256": engine.model_hash,
            "base": engine.base,
            "is_noise_model": engine.source.is_noise,
        },
        "loras": [{"name": ref.name, "sha256": ref.sha256, "weight": ref.weight} for ref in refs],
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "prompt_parts": job.prompt_parts,
        "prompt_chunks": generated.prompt_chunks,
        "long_prompt": "A1111-style: 75-token chunks encoded separately and concatenated",
        "seed": job.seed,
        "scheduler": scheduler,
        "sampler": SCHEDULERS[scheduler].sampler_label if scheduler in SCHEDULERS else scheduler,
        "steps": job.steps,
        "guidance_scale": job.guidance_scale,
        "width": job.width,
        "height": job.height,
        **({"init_image": job.init_image_id, "denoising_strength": job.strength} if job.strength is not None else {}),
        "device": engine.device,
        "dtype": str(engine.dtype).removeprefix("torch."),
        "libraries": library_versions(),
        "timings": {**generated.timings, "model_load_seconds": round(engine.load_seconds, 3)},
        "created_at": timezone.now().isoformat(),
    }


def _store(job: GenerationJob, engine: Engine, generated, refs: Sequence[LoraRef]) -> None:
    import hashlib

    recipe = _recipe(job, engine, generated, refs)
    name = _output_name(job)
    path = media_path(name)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", recipe_infotext(recipe))
    buffer = io.BytesIO()
    generated.image.save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()
    with atomic_write(path.with_suffix(".json")) as handle:
        handle.write(json.dumps(recipe, indent=2, sort_keys=True).encode())
    with atomic_write(path) as handle:
        handle.write(data)
    image = job_services.job_image_record(
        job_id=job.pk,
        file_name=name,
        width=generated.image.width,
        height=generated.image.height,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        recipe=recipe,
    )
    if image is None:
        logger.info("Job %s was already recorded or cancelled; the file at %s is left as is", job.pk, name)


def vary_requests(jobs: Sequence[GenerationJob]) -> list[VaryRequest]:
    """img2img requests for variation jobs: each one's source image read from its file."""
    from PIL import Image as PILImage

    requests = []
    for job in jobs:
        if job.init_image is None:
            raise EngineError(f"Job {job.pk}: the image to vary was deleted.")
        with PILImage.open(media_path(job.init_image.file.name)) as source:
            requests.append(VaryRequest(job.prompt, job.negative_prompt, job.seed, source.convert("RGB")))
    return requests


def _group_key(job: GenerationJob) -> tuple:
    stack = tuple((entry["sha256"], entry["weight"]) for entry in job.lora_stack)
    return (
        stack,
        job.width,
        job.height,
        job.steps,
        job.guidance_scale,
        job.scheduler or DEFAULT_SCHEDULER,
        job.strength,
    )


def chunk_execute(*, job_ids: Sequence[int], task_id: str, hostname: str | None = None) -> dict:
    """Generate a chunk of jobs; returns counts. Each job ends succeeded, failed or cancelled."""
    claimed = job_services.jobs_claim(job_ids=job_ids, task_id=task_id)
    run_ids = {job.run_id for job in claimed if job.run_id} | set(
        GenerationJob.objects.filter(pk__in=job_ids, run__isnull=False).values_list("run_id", flat=True)
    )
    for run_id in run_ids:
        run_mark_running(run_id=run_id)
    summary = {"claimed": len(claimed), "succeeded": 0, "failed": 0, "cancelled": 0}
    if not claimed:
        for run_id in run_ids:
            run_refresh(run_id=run_id)
        return summary
    engine = engine_get()
    engine_status_write(engine, hostname=hostname)
    last_beat = [time.monotonic()]
    try:
        groups: dict[tuple, list[GenerationJob]] = {}
        for job in claimed:
            groups.setdefault(_group_key(job), []).append(job)
        for jobs in groups.values():
            _group_run(engine, jobs, summary, last_beat, hostname)
    except BaseException as exc:
        # Anything unexpected (time limit, a bug): no job of this chunk is left "running".
        for job in claimed:
            job_services.job_fail(job_id=job.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for run_id in run_ids:
            run_refresh(run_id=run_id)
    return summary


def _group_run(engine: Engine, jobs: list[GenerationJob], summary: dict, last_beat: list, hostname) -> None:
    first = jobs[0]
    try:
        refs = _lora_refs(first)
        batch = BatchSettings(
            width=first.width,
            height=first.height,
            steps=first.steps,
            guidance_scale=first.guidance_scale,
            scheduler=first.scheduler or DEFAULT_SCHEDULER,
            loras=refs,
        )
        engine.load()
        engine.apply_loras(refs)
    except EngineError as exc:
        for job in jobs:
            job_services.job_fail(job_id=job.pk, error=str(exc))
            summary["failed"] += 1
        return
    size = engine.batch_size(first.width, first.height)
    for start in range(0, len(jobs), size):
        part = jobs[start : start + size]
        cancelled = job_services.jobs_cancel_requested(job_ids=[job.pk for job in part])
        for job in part:
            if job.pk in cancelled:
                job_services.job_mark_cancelled(job_id=job.pk)
                summary["cancelled"] += 1
        part = [job for job in part if job.pk not in cancelled]
        if part:
            _part_run(engine, part, batch, refs, summary, last_beat, hostname)


def _part_run(engine, part, batch, refs, summary, last_beat, hostname) -> None:
    ids = [job.pk for job in part]

    def on_step(step: int, steps: int, indices: Sequence[int]) -> None:
        if job_services.jobs_progress(job_ids=[ids[i] for i in indices], step=step) == 0:
            raise GenerationCancelled
        if time.monotonic() - last_beat[0] > HEARTBEAT_SECONDS:
            last_beat[0] = time.monotonic()
            engine_status_write(engine, hostname=hostname)

    try:
        if part[0].strength is not None:
            images = img2img_generate(
                engine,
                vary_requests(part),
                batch,
                strength=part[0].strength,
                on_step=on_step,
                batch_size=len(part),
            )
        else:
            requests = [ImageRequest(job.prompt, job.negative_prompt, job.seed) for job in part]
            images = engine.generate(requests, batch, on_step=on_step, batch_size=len(part))
    except GenerationCancelled:
        for job in part:
            job_services.job_mark_cancelled(job_id=job.pk)
            summary["cancelled"] += 1
        return
    except Exception as exc:
        if len(part) > 1:
            # One bad item (or memory) must not sink the others: try them one by one.
            logger.warning("Batch of %d failed (%s); retrying one by one", len(part), exc)
            for job in part:
                _part_run(engine, [job], batch, refs, summary, last_beat, hostname)
            return
        logger.exception("Job %s failed", part[0].pk)
        job_services.job_fail(job_id=part[0].pk, error=f"{type(exc).__name__}: {exc}")
        summary["failed"] += 1
        return
    cancelled = job_services.jobs_cancel_requested(job_ids=ids)
    for job, generated in zip(part, images, strict=True):
        if job.pk in cancelled:
            job_services.job_mark_cancelled(job_id=job.pk)
            summary["cancelled"] += 1
            continue
        try:
            _store(job, engine, generated, refs)
            summary["succeeded"] += 1
        except OSError as exc:
            job_services.job_fail(job_id=job.pk, error=f"Could not write the image: {exc}")
            summary["failed"] += 1
