"""Batch runs end to end: a real Celery worker on Redis with PostgreSQL and the tiny model on CPU."""

from __future__ import annotations

import json

import pytest
from PIL import Image as PILImage

from albums.models import AlbumImage, Image
from albums.services.files import media_path
from generation.engine.png import infotext_parse
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob
from generation.selectors import engine_status, run_progress
from generation.services.builtin import builtin_templates_load
from generation.services.runs import run_cancel, run_retry, run_start
from generation.tests.support import WORKER_ENV
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 1000}


def _zodiac() -> BatchTemplate:
    builtin_templates_load()
    return BatchTemplate.objects.get(slug="zodiac")


def _finished(run: BatchGenerationRun, timeout: float = 120) -> BatchGenerationRun:
    def done():
        run.refresh_from_db()
        return run.is_finished and not run.jobs.filter(status__in=GenerationJob.IN_PROGRESS).exists()

    wait_for(done, timeout=timeout, message=f"run {run.pk} to finish")
    return run


def test_zodiac_template_end_to_end(celery_worker):
    template = _zodiac()
    celery_worker("gpu", extra_env=WORKER_ENV)
    run = run_start(template=template, theme="art deco gold", album_name="Deco zodiac", overrides=SMALL)
    assert run.album.source_type == "batch_generation" and run.total_items == 12
    run = _finished(run)

    assert run.status == BatchGenerationRun.Status.COMPLETED, run_progress(run=run)["items"]
    assert (run.completed_items, run.failed_items) == (12, 0)
    memberships = list(AlbumImage.objects.filter(album=run.album).order_by("position").select_related("image"))
    jobs = list(run.jobs.order_by("row_index").select_related("result_image"))
    assert [m.image_id for m in memberships] == [job.result_image_id for job in jobs]
    assert [m.position for m in memberships] == list(range(1, 13))
    for job, row in zip(jobs, template.csv_data, strict=True):
        assert job.seed == SMALL["seed"] + job.row_index
        path = media_path(job.result_image.file.name)
        assert path.name.startswith(f"{job.row_index + 1:02d}-{row['sign'].lower()}")
        with PILImage.open(path) as png:
            assert png.size == (64, 64)
            params = infotext_parse(png.text["parameters"])
        assert params["prompt"] == job.prompt and row["sign"] in job.prompt and "art deco gold" in job.prompt
        assert params["negative_prompt"] == job.negative_prompt
        fields = params["fields"]
        assert (fields["Seed"], fields["Steps"], fields["Size"], fields["Sampler"]) == (
            str(job.seed),
            "2",
            "64x64",
            "DPM++ 2M",
        )
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["seed"] == job.seed and sidecar["model"]["is_noise_model"] is True
        assert sidecar["model"]["sha256"][:10] == fields["Model hash"]
        assert sidecar["prompt_parts"]["row"] == row and sidecar["libraries"]["diffusers"]
        assert sidecar["prompt_chunks"] >= 2  # the zodiac prompts are longer than 77 tokens
    progress = run_progress(run=run)
    assert progress["completed"] == 12 and progress["items"][0]["image_id"] == jobs[0].result_image_id
    status = engine_status()
    assert status["loaded"] and status["is_noise_model"] and status["device"] == "cpu"


def _wait_running(run: BatchGenerationRun, *, min_step: int = 1, succeeded: int = 0) -> None:
    def started():
        jobs = run.jobs.all()
        return (
            jobs.filter(status=GenerationJob.Status.RUNNING, progress_done__gte=min_step).exists()
            and jobs.filter(status=GenerationJob.Status.SUCCEEDED).count() >= succeeded
        )

    wait_for(started, timeout=120, interval=0.05, message="a job of the run to be denoising")


def test_cancel_mid_run_keeps_finished_images_then_retry_completes(celery_worker, settings):
    settings.IMAGINEER_CHUNK_SIZE = 4
    template = _zodiac()
    celery_worker("gpu", extra_env={**WORKER_ENV, "IMAGINEER_BATCH_SIZE": "2"})
    run = run_start(template=template, theme="ink", overrides={**SMALL, "steps": 40})
    # Claimed rows are "running" from the claim; their step is written at most every 0.25 s, so
    # on a quiet machine a 64x64 part can end before any step is written: wait for the status.
    _wait_running(run, min_step=0, succeeded=1)
    run = run_cancel(run=run)
    # Cancelling until the chunk in flight stops at its next progress check.
    assert run.status in (BatchGenerationRun.Status.CANCELLING, BatchGenerationRun.Status.CANCELLED)
    run = _finished(run)
    assert run.status == BatchGenerationRun.Status.CANCELLED
    statuses = list(run.jobs.values_list("status", flat=True))
    assert not {GenerationJob.Status.QUEUED, *GenerationJob.IN_PROGRESS} & set(statuses)
    kept = run.jobs.filter(status=GenerationJob.Status.SUCCEEDED)
    assert 1 <= kept.count() < 12
    assert run.jobs.filter(status=GenerationJob.Status.CANCELLED).count() == 12 - kept.count()
    kept_images = {
        job.pk: (job.result_image_id, job.result_image.sha256) for job in kept.select_related("result_image")
    }
    assert Image.objects.count() == len(kept_images)
    for job in kept.select_related("result_image"):
        assert media_path(job.result_image.file.name).is_file()

    run = run_retry(run=run)
    assert run.status == BatchGenerationRun.Status.RUNNING
    run = _finished(run)
    assert run.status == BatchGenerationRun.Status.COMPLETED and run.completed_items == 12
    for pk, (image_id, sha256) in kept_images.items():
        job = GenerationJob.objects.select_related("result_image").get(pk=pk)
        assert (job.result_image_id, job.result_image.sha256) == (image_id, sha256)
    assert Image.objects.count() == 12 == AlbumImage.objects.filter(album=run.album).count()


def test_worker_killed_mid_run_redelivers_without_duplicates(celery_worker, settings):
    settings.IMAGINEER_CHUNK_SIZE = 4
    template = _zodiac()
    # Redis hands an unacknowledged message to another worker after the visibility timeout; it
    # takes the dead worker's rows over once their heartbeat is stale (never while it beats).
    env = {
        **WORKER_ENV,
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "IMAGINEER_BATCH_SIZE": "2",
        "IMAGINEER_JOB_STALE_SECONDS": "5",
    }
    first = celery_worker("gpu", extra_env=env)
    run = run_start(template=template, theme="ink", overrides={**SMALL, "steps": 40})
    # Claimed rows are "running" from the claim; their step is written at most every 0.25 s, so
    # on a quiet machine a 64x64 part can end before any step is written: wait for the status.
    _wait_running(run, min_step=0, succeeded=1)
    first.kill()
    assert run.jobs.filter(status=GenerationJob.Status.RUNNING).exists()
    celery_worker("gpu", extra_env=env)
    run = _finished(run, timeout=180)
    assert run.status == BatchGenerationRun.Status.COMPLETED, run_progress(run=run)["items"]
    assert Image.objects.count() == 12
    assert AlbumImage.objects.filter(album=run.album).count() == 12
    assert sorted(run.jobs.values_list("result_image_id", flat=True)) == sorted(
        Image.objects.values_list("pk", flat=True)
    )
    files = sorted(p.name for p in media_path(f"outputs/{run.album.slug}").glob("*.png"))
    assert len(files) == 12


def test_generate_commands_single_job_with_lora_and_batch_wait(celery_worker, settings, tmp_path, engine):
    from django.core.management import call_command

    from generation.engine.lora_make import lora_make_random
    from generation.models import Lora
    from generation.services.loras import lora_register
    from imagineer.tests.factories import BatchTemplateFactory

    lora_register(path=lora_make_random(engine.pipe, settings.LORA_ROOT / "cards.safetensors", seed=5))
    celery_worker("gpu", extra_env=WORKER_ENV)
    # The worker loads its engine as it starts and says so, before any task arrives.
    wait_for(lambda: engine_status()["loaded"], timeout=120, message="the worker to report its engine")
    assert engine_status()["workers"][0]["device"] == "cpu"
    output = tmp_path / "out" / "castle.png"
    call_command(
        "generate", "--prompt", "a castle", "--lora", "cards:0.7", "--width", "64", "--height", "64",
        "--steps", "2", "--seed", "42", "--output", str(output), "--timeout", "120",
    )  # fmt: skip
    with PILImage.open(output) as png:
        params = infotext_parse(png.text["parameters"])
    fields = params["fields"]
    assert params["prompt"] == "a castle <lora:cards:0.7>"
    lora = Lora.objects.get(name="cards")
    assert fields["Seed"] == "42" and fields["Lora hashes"] == f"cards: {lora.a1111_hash[:12]}"
    assert lora.a1111_hash and lora.a1111_hash != lora.sha256
    sidecar = json.loads(output.with_suffix(".json").read_text())
    assert sidecar["loras"] == [{"name": "cards", "sha256": lora.sha256, "weight": 0.7}]

    template = BatchTemplateFactory(slug="mini")
    call_command("generate_batch", "mini", "--theme", "noir", "--wait", "--steps", "2", "--timeout", "120")
    run = BatchGenerationRun.objects.get(template=template)
    assert run.status == BatchGenerationRun.Status.COMPLETED and run.completed_items == 3
