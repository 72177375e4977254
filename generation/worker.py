"""The gpu worker side of generation: every database and file write around the engine.

The engine (``generation.engine``) knows no Django: it takes requests and hardware options and
reports each denoising step through a callback. This module is the one place that

* reads the hardware options (settings + the Config row) and keeps the process-wide engine,
* claims a chunk's jobs (``imagineer.jobs.claim``, in row order within a run),
* turns step callbacks into progress writes (at most ``PROGRESS_INTERVAL`` apart) that also
  carry the heartbeat and notice a cancel,
* writes each PNG and then its JSON sidecar (temporary name + rename), and records the Image
  row and the job's success in one transaction, after the files are complete,
* fails or cancels what did not finish, and settles the runs touched.

Imported by ``generation.tasks`` inside the task body only: web processes never load torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import torch
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import PngImagePlugin

from albums.models import AlbumImage, Image
from albums.services.files import atomic_write, media_path
from generation.engine.img2img import VaryRequest, img2img_generate
from generation.engine.runtime import (
    BatchSettings,
    Engine,
    EngineError,
    GeneratedImage,
    GenerationCancelled,
    HardwareOptions,
    ImageRequest,
    LoraRef,
    device_resolve,
    dtype_resolve,
    engine_build,
    library_versions,
)
from generation.engine.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generation.guided import guide_group_key, guide_recipe, guided_generate
from generation.infotext import recipe_infotext
from generation.model_config import model_source
from generation.models import BatchGenerationRun, EngineWorker, GenerationJob, Lora
from generation.services.decks import title_file_stem
from generation.services.jobs import jobs_resend, run_refresh
from generation.services.loras import lora_path
from imagineer import jobs
from imagineer.config import config_get

logger = logging.getLogger(__name__)
# Progress (and heartbeat, and the cancel check) is written at most this often per pipeline call.
PROGRESS_INTERVAL = 0.25
ENGINE_STATUS_SECONDS = 5.0
Status = GenerationJob.Status


class ChunkSummary(TypedDict):
    """What a chunk task returns (its Celery result)."""

    claimed: int
    succeeded: int
    failed: int
    cancelled: int


# --- the resident engine ----------------------------------------------------------------------


def hardware_options() -> HardwareOptions:
    """The environment's hardware settings, overridden by what an admin set in the configuration.

    The configuration's ``auto`` device and zero batch size mean "as the environment says";
    turning mixed precision off forces fp32; slicing is on when either asks for it.
    """
    config = config_get()
    hardware, generation = config["hardware"], config["generation"]
    return HardwareOptions(
        device=settings.IMAGINEER_DEVICE if hardware["device"] == "auto" else hardware["device"],
        dtype=settings.IMAGINEER_DTYPE if hardware["mixed_precision"] else "fp32",
        attention_slicing=settings.IMAGINEER_ATTENTION_SLICING or hardware["enable_attention_slicing"],
        vae_slicing=settings.IMAGINEER_VAE_SLICING or hardware["enable_vae_slicing"],
        xformers=hardware["enable_xformers"],
        batch_size=generation["batch_size"] or settings.IMAGINEER_BATCH_SIZE,
        torch_threads=settings.IMAGINEER_TORCH_THREADS,
    )


_engine: Engine | None = None
_engine_options: HardwareOptions | None = None
_engine_lock = threading.Lock()


def engine_get() -> Engine:
    """The process-wide engine, loaded on first use and kept for the life of the process.

    Hardware options changed in the configuration take effect at the next chunk: slicing and
    batch size in place, a new device or precision by loading the pipeline again.
    """
    global _engine, _engine_options
    options = hardware_options()
    with _engine_lock:
        if _engine is not None and _engine_options is not None and options != _engine_options:
            same_placement = (
                device_resolve(options.device) == _engine.device
                and dtype_resolve(options.dtype, _engine.device) == _engine.dtype
            )
            if same_placement:
                _engine.options_apply(options)
            else:
                logger.info("Hardware options changed (%s -> %s): reloading the pipeline", _engine_options, options)
                _engine = None
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        if _engine is None:
            _engine = engine_build(model_source(), options, default_scheduler=settings.IMAGINEER_SCHEDULER)
        _engine_options = options
        return _engine


def engine_status_write(engine: Engine, *, hostname: str | None = None) -> None:
    """What this worker has loaded, for pages and the API (they never import torch)."""
    info = engine.info()
    EngineWorker.objects.update_or_create(
        hostname=hostname or jobs.worker_name(),
        defaults={
            "model_id": info["model_id"],
            "is_noise_model": info["is_noise_model"],
            "device": info["device"],
            "loaded": info["loaded"],
            "info": info,
            "last_seen": timezone.now(),
        },
    )


# --- claim ------------------------------------------------------------------------------------


def chunk_claim(*, job_ids: Sequence[int], task_id: str, worker: str) -> list[GenerationJob]:
    """Claim up to ``len(job_ids)`` jobs for this task, the first queued rows of the run first.

    A message carries the ids it was sent with, but brokers and several workers deliver
    chunks in any order; taking the run's lowest queued rows instead makes rows start in row
    order whichever message arrives first. A redelivered message (same task id) still gets
    back the rows its dead worker held, and a stale row of its own is taken over.
    """
    own = GenerationJob.objects.filter(pk__in=job_ids)
    run_ids = set(own.exclude(run=None).values_list("run_id", flat=True))
    want = len(job_ids)
    # Rows this task already held (a retry, or a redelivery after its worker died), including
    # rows it took from the front of the run, and its own rows whose holder went stale.
    held_before = GenerationJob.objects.filter(Q(task_id=task_id) | Q(pk__in=job_ids)).filter(
        status__in=GenerationJob.IN_PROGRESS
    )
    claimed: list[int] = []
    if held_before.exists():
        claimed += jobs.claim(held_before, task_id=task_id, worker=worker)
    if len(run_ids) == 1:
        run_id = next(iter(run_ids))
        taken_from: list[str] = []
        while len(claimed) < want:
            front = dict(
                GenerationJob.objects.filter(run_id=run_id, status=Status.QUEUED, cancel_requested=False)
                .order_by("row_index")
                .values_list("pk", "task_id")[: want - len(claimed)]
            )
            if not front:
                break
            # Another worker may take some of these first (the claim is conditional): try the next ones.
            got = jobs.claim(GenerationJob.objects.filter(pk__in=front), task_id=task_id, worker=worker)
            claimed += got
            taken_from += [front[pk] for pk in got if front[pk] != task_id]
        # The run's rows still queued under this message take over the messages of the rows it
        # took: a queued row keeps naming a message still to come, which is how the reconciler
        # tells a lost message from one that is merely waiting (imagineer/reconcile.py).
        spare = GenerationJob.objects.filter(run_id=run_id, status=Status.QUEUED, task_id=task_id).order_by("row_index")
        for pk, other in zip(list(spare.values_list("pk", flat=True)), taken_from, strict=False):
            GenerationJob.objects.filter(pk=pk, status=Status.QUEUED, task_id=task_id).update(task_id=other)
        # Queued rows of this message whose cancel was requested are settled now.
        if own.filter(status=Status.QUEUED, cancel_requested=True).exists():
            jobs.claim(own.filter(status=Status.QUEUED, cancel_requested=True), task_id=task_id, worker=worker)
    else:
        claimed += jobs.claim(own.filter(status=Status.QUEUED), task_id=task_id, worker=worker)
    return list(
        GenerationJob.objects.filter(pk__in=claimed)
        .select_related("run", "album", "created_by", "init_image")
        .order_by("row_index", "pk")
    )


def run_mark_running(*, run_id: int) -> None:
    """A run starts when a worker claims its first chunk."""
    BatchGenerationRun.objects.filter(pk=run_id, status=BatchGenerationRun.Status.QUEUED).update(
        status=BatchGenerationRun.Status.RUNNING, started_at=timezone.now()
    )


# --- files and the Image row --------------------------------------------------------------------


def _lora_refs(job: GenerationJob) -> tuple[LoraRef, ...]:
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


def _recipe(job: GenerationJob, engine: Engine, generated: GeneratedImage, refs: Sequence[LoraRef]) -> dict:
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
        **guide_recipe(job, engine),
        "device": engine.device,
        "dtype": str(engine.dtype).removeprefix("torch."),
        "libraries": library_versions(),
        "timings": {**generated.timings, "model_load_seconds": round(engine.load_seconds, 3)},
        "created_at": timezone.now().isoformat(),
    }


@transaction.atomic
def job_image_record(
    *, job_id: int, worker: str, file_name: str, width: int, height: int, file_size: int, sha256: str, recipe: dict
) -> Image | None:
    """Create the Image row for a complete file and mark the job succeeded, exactly once.

    Only the worker holding the job records it; a cancel that arrived while the image was
    being made wins (the file stays, no row points at it).
    """
    job = GenerationJob.objects.select_for_update().get(pk=job_id)
    if job.status not in GenerationJob.IN_PROGRESS or job.worker != worker or job.result_image_id:
        return None
    now = timezone.now()
    if job.cancel_requested:
        job.status, job.finished_at, job.heartbeat_at = Status.CANCELLED, now, None
        job.save(update_fields=["status", "finished_at", "heartbeat_at"])
        return None
    image = Image.objects.create(
        file=file_name,
        width=width,
        height=height,
        file_size=file_size,
        sha256=sha256,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        recipe=recipe,
        title=(job.prompt_parts.get("title") or "")[:300],
        created_by=job.created_by,
    )
    if job.album_id:
        position = (job.row_index + 1) if job.row_index is not None else 0
        if position == 0:
            last = AlbumImage.objects.filter(album_id=job.album_id).order_by("-position").first()
            position = (last.position + 1) if last else 1
        AlbumImage.objects.get_or_create(album_id=job.album_id, image=image, defaults={"position": position})
    job.status, job.result_image, job.progress_done = Status.SUCCEEDED, image, job.steps
    job.finished_at, job.heartbeat_at = now, None
    job.save(update_fields=["status", "result_image", "progress_done", "finished_at", "heartbeat_at"])
    return image


def run_image_count(*, run_id: int, steps: int) -> None:
    """Move the run's counts for one stored image now (run_refresh settles them at the end).

    Its own statement after the job's transaction: holding the job's lock while waiting for
    the run's would deadlock with run_cancel, which locks the run and then its jobs.
    """
    BatchGenerationRun.objects.filter(pk=run_id).update(
        completed_items=F("completed_items") + 1, progress_done=F("progress_done") + steps
    )


def image_store(job: GenerationJob, engine: Engine, generated: GeneratedImage, refs: Sequence[LoraRef], *, worker: str):
    """PNG first, then its sidecar, each complete before it has its name; then the row."""
    recipe = _recipe(job, engine, generated, refs)
    name = _output_name(job)
    path = media_path(name)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", recipe_infotext(recipe))
    buffer = io.BytesIO()
    generated.image.save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()
    with atomic_write(path) as handle:
        handle.write(data)
    with atomic_write(path.with_suffix(".json")) as handle:
        handle.write(json.dumps(recipe, indent=2, sort_keys=True).encode())
    image = job_image_record(
        job_id=job.pk,
        worker=worker,
        file_name=name,
        width=generated.image.width,
        height=generated.image.height,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        recipe=recipe,
    )
    if image is None:
        logger.info("Job %s was already recorded or cancelled; the file at %s is left as is", job.pk, name)
    elif job.run_id:
        run_image_count(run_id=job.run_id, steps=job.steps)
    return image


# --- running a chunk ----------------------------------------------------------------------------


@dataclass
class _Chunk:
    engine: Engine
    worker: str
    hostname: str | None
    summary: ChunkSummary
    progress: jobs.Throttle = field(default_factory=lambda: jobs.Throttle(PROGRESS_INTERVAL))
    engine_status: jobs.Throttle = field(default_factory=lambda: jobs.Throttle(ENGINE_STATUS_SECONDS))

    def fail(self, job_ids: Sequence[int], error: str) -> None:
        self.summary["failed"] += jobs.job_fail(GenerationJob, job_ids, error=error, worker=self.worker)

    def cancelled(self, job_ids: Sequence[int]) -> None:
        self.summary["cancelled"] += jobs.job_cancelled(GenerationJob, job_ids, worker=self.worker)


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
        guide_group_key(job),
    )


def chunk_run(*, job_ids: Sequence[int], task_id: str, hostname: str | None = None) -> ChunkSummary:
    """Generate a chunk of jobs; each job it claims ends succeeded, failed or cancelled.

    A dropped database connection propagates untouched (the task wrapper retries it and no
    write is tried on the dead connection); anything else fails the jobs still held.
    """
    worker = jobs.worker_name()
    claimed = chunk_claim(job_ids=job_ids, task_id=task_id, worker=worker)
    run_ids = {job.run_id for job in claimed if job.run_id} | set(
        GenerationJob.objects.filter(pk__in=job_ids, run__isnull=False).values_list("run_id", flat=True)
    )
    for run_id in run_ids:
        run_mark_running(run_id=run_id)
    summary = ChunkSummary(claimed=len(claimed), succeeded=0, failed=0, cancelled=0)
    if claimed:
        ids = [job.pk for job in claimed]
        try:
            # Loading the engine (the first chunk of a worker: seconds to minutes), LoRAs and
            # decoding write no progress: the thread keeps the claim fresh meanwhile.
            with jobs.Heartbeat(GenerationJob, ids, worker=worker):
                engine = engine_get()
                engine_status_write(engine, hostname=hostname)
                chunk = _Chunk(engine=engine, worker=worker, hostname=hostname, summary=summary)
                groups: dict[tuple, list[GenerationJob]] = {}
                for job in claimed:
                    groups.setdefault(_group_key(job), []).append(job)
                for group in groups.values():
                    _group_run(chunk, group)
            # A row still held here has no image: its cancel was withdrawn (a retry) after this
            # worker had stopped on it. Back to the queue, sent again.
            leftover = list(jobs.held(GenerationJob, ids, worker=worker).values_list("pk", flat=True))
            if leftover:
                jobs.release(GenerationJob, leftover, worker=worker)
                jobs_resend(leftover)
        except jobs.TRANSIENT_DB_ERRORS:
            raise
        except BaseException as exc:
            # Anything unexpected (time limit, a bug): no job of this chunk is left running.
            jobs.job_fail(GenerationJob, ids, error=f"{type(exc).__name__}: {exc}", worker=worker)
            for run_id in run_ids:
                run_refresh(run_id=run_id)
            raise
    for run_id in run_ids:
        run_refresh(run_id=run_id)
    return summary


def _group_run(chunk: _Chunk, group: list[GenerationJob]) -> None:
    first = group[0]
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
        chunk.engine.load()
        chunk.engine.apply_loras(refs)
    except EngineError as exc:
        chunk.fail([job.pk for job in group], str(exc))
        return
    size = chunk.engine.batch_size(first.width, first.height)
    for start in range(0, len(group), size):
        part = group[start : start + size]
        cancelled = jobs.cancel_requested(GenerationJob, [job.pk for job in part])
        chunk.cancelled([job.pk for job in part if job.pk in cancelled])
        part = [job for job in part if job.pk not in cancelled]
        if part:
            _part_run(chunk, part, batch, refs)


def _part_run(chunk: _Chunk, part: list[GenerationJob], batch: BatchSettings, refs: tuple[LoraRef, ...]) -> None:
    ids = [job.pk for job in part]
    chunk.progress.reset()

    def on_step(step: int, steps: int, indices: Sequence[int]) -> None:
        # The engine calls this after every denoising step; the database hears of it at most
        # every PROGRESS_INTERVAL (and on every step that takes longer than that).
        if not chunk.progress.ready():
            return
        live = (
            jobs.held(GenerationJob, [ids[i] for i in indices], worker=chunk.worker)
            .filter(cancel_requested=False)
            .update(progress_done=step, heartbeat_at=timezone.now())
        )
        if live == 0:
            raise GenerationCancelled
        if chunk.engine_status.ready():
            engine_status_write(chunk.engine, hostname=chunk.hostname)

    try:
        if part[0].strength is not None:
            images = img2img_generate(
                chunk.engine,
                vary_requests(part),
                batch,
                strength=part[0].strength,
                on_step=on_step,
                batch_size=len(part),
            )
        elif part[0].guide:
            images = guided_generate(chunk.engine, part, batch, on_step=on_step)
        else:
            requests = [ImageRequest(job.prompt, job.negative_prompt, job.seed) for job in part]
            images = chunk.engine.generate(requests, batch, on_step=on_step, batch_size=len(part))
    except GenerationCancelled:
        chunk.cancelled(ids)
        return
    except jobs.TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        if len(part) > 1:
            # One bad item (or memory) must not sink the others: try them one by one.
            logger.warning("Batch of %d failed (%s); retrying one by one", len(part), exc)
            for job in part:
                _part_run(chunk, [job], batch, refs)
            return
        logger.exception("Job %s failed", part[0].pk)
        chunk.fail(ids, f"{type(exc).__name__}: {exc}")
        return
    cancelled = jobs.cancel_requested(GenerationJob, ids)
    chunk.cancelled([pk for pk in ids if pk in cancelled])
    for job, generated in zip(part, images, strict=True):
        if job.pk in cancelled:
            continue
        try:
            if image_store(job, chunk.engine, generated, refs, worker=chunk.worker) is not None:
                chunk.summary["succeeded"] += 1
            else:
                chunk.summary["cancelled"] += 1
        except OSError as exc:
            chunk.fail([job.pk], f"Could not write the image: {exc}")


def engine_preload_forever(heartbeat_seconds: float) -> None:
    """A gpu worker's background thread: load the engine now, then report it every so often."""
    from django.db import connection

    try:
        engine = engine_get()
    except Exception:
        logger.exception("Loading the generation engine failed; the first gpu task will try again")
        connection.close()
        return
    # Pages read EngineWorker.last_seen to tell a live, idle worker from a dead one.
    while True:
        try:
            engine_status_write(engine)
        except Exception:
            logger.exception("Could not record the engine status")
        finally:
            connection.close()
        time.sleep(heartbeat_seconds)
