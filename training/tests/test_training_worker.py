"""Training end to end on the tiny model: a real gpu Celery worker, Redis and PostgreSQL."""

from __future__ import annotations

import math
import statistics

import pytest
from django.urls import reverse

from albums.services.files import media_path
from generation.models import BatchGenerationRun, GenerationJob, Lora
from generation.services.loras import lora_path
from generation.services.runs import run_start
from imagineer.testing import wait_for
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory
from training.models import TrainingRun
from training.tests.conftest import album_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
# One torch thread per worker: on a small shared CPU, torch's spinning thread pool is many
# times slower than one thread when other processes hold the cores.
WORKER_ENV = {"OMP_NUM_THREADS": "1"}
FAST = {"resolution": 64, "learning_rate": 5e-3, "batch_size": 2, "seed": 11}


def _wait(run: TrainingRun, statuses: set[str], timeout: float = 240) -> TrainingRun:
    def done():
        run.refresh_from_db()
        return run.status in statuses

    wait_for(done, timeout=timeout, message=f"training run {run.pk} to reach {statuses} (is {run.status}, {run.error})")
    return run


def _start(client, album, **params) -> TrainingRun:
    body = {"album": album.pk, "name": params.pop("name"), "trigger_word": "crdz", **FAST, **params}
    response = client.post(reverse("training-api:run-list"), body, content_type="application/json")
    assert response.status_code == 201, response.json()
    return TrainingRun.objects.get(pk=response.json()["id"])


def test_train_register_and_use_in_a_template(celery_worker, creator, client, tiny_model_dir):
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    album = album_make(4)
    client.force_login(creator)
    celery_worker("gpu", extra_env=WORKER_ENV)
    run = _start(client, album, name="Card style", max_steps=20, save_every=10, sample_prompts=["crdz, a card"])
    run = _wait(run, {TrainingRun.Status.COMPLETED, TrainingRun.Status.FAILED})
    assert run.status == TrainingRun.Status.COMPLETED, run.error

    losses = [loss for _, loss in run.loss_history]
    assert [step for step, _ in run.loss_history] == list(range(1, 21))
    assert all(math.isfinite(loss) for loss in losses)
    assert statistics.mean(losses[-5:]) < statistics.mean(losses[:5]), losses
    assert run.steps_per_second > 0 and run.base_model_hash
    assert [c["step"] for c in run.checkpoints] == [10, 20]
    for checkpoint in run.checkpoints:
        assert media_path(checkpoint["file"]).is_file() and len(checkpoint["samples"]) == 1
        assert media_path(checkpoint["samples"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    lora = run.lora
    assert (lora.name, lora.source, lora.base, lora.trigger_words) == ("Card style", "training", "sd15", "crdz")
    assert (lora.rank, lora.alpha) == (4, 8.0)
    with safe_open(str(lora_path(lora)), framework="pt") as handle:
        metadata = handle.metadata()
    assert (metadata["ss_network_dim"], metadata["ss_network_alpha"], metadata["ss_steps"]) == ("4", "8.0", "20")
    assert metadata["ss_new_sd_model_hash"] == run.base_model_hash and '"crdz": 4' in metadata["ss_tag_frequency"]

    # The file loads in a fresh pipeline with diffusers' own loader, alpha kept, and changes the image.
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)

    def render():
        generator = torch.Generator().manual_seed(3)
        return pipe(
            "crdz, a card", width=64, height=64, num_inference_steps=3, generator=generator, output_type="np"
        ).images[0]

    before = render()
    path = lora_path(lora)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="trained")
    config = pipe.unet.peft_config["trained"]
    assert (config.r, config.lora_alpha) == (4, 8)
    assert abs(render() - before).mean() > 1e-4

    # Usable in a template at once, on the same gpu queue.
    template = BatchTemplateFactory(width=64, height=64, steps=2)
    BatchTemplateLoraFactory(template=template, lora=lora)
    batch = run_start(template=template, theme="crdz", overrides={"seed": 5})
    wait_for(lambda: BatchGenerationRun.objects.get(pk=batch.pk).is_finished, timeout=120, message="template run")
    batch.refresh_from_db()
    assert batch.status == BatchGenerationRun.Status.COMPLETED, batch.error
    job = batch.jobs.first()
    assert job.status == GenerationJob.Status.SUCCEEDED and job.lora_stack[0]["sha256"] == lora.sha256


def test_cancel_then_resume_reaches_max_steps(celery_worker, creator, client):
    album = album_make(3)
    client.force_login(creator)
    celery_worker("gpu", extra_env=WORKER_ENV)
    run = _start(client, album, name="Resumable", max_steps=80, save_every=60, batch_size=1)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).current_step >= 2, timeout=120, message="first steps")
    response = client.post(reverse("training-api:run-cancel", args=[run.pk]))
    assert response.status_code == 202
    run = _wait(run, {TrainingRun.Status.CANCELLED, TrainingRun.Status.COMPLETED, TrainingRun.Status.FAILED})
    assert run.status == TrainingRun.Status.CANCELLED, run.error
    stopped_at = run.current_step
    assert 2 <= stopped_at < 80
    assert run.last_checkpoint["step"] == stopped_at and media_path(run.last_checkpoint["file"]).is_file()
    assert not Lora.objects.filter(name="Resumable").exists()

    response = client.post(reverse("training-api:run-resume", args=[run.pk]))
    assert response.status_code == 202, response.json()
    run = _wait(run, {TrainingRun.Status.COMPLETED, TrainingRun.Status.FAILED})
    assert run.status == TrainingRun.Status.COMPLETED, run.error
    assert run.current_step == 80
    assert [step for step, _ in run.loss_history] == list(range(1, 81))
    assert [c["step"] for c in run.checkpoints] == sorted({60, 80, stopped_at})
    assert run.lora.name == "Resumable"


def test_a_killed_worker_is_taken_over_from_the_checkpoint(celery_worker, creator, client, settings):
    """SIGKILL the gpu worker mid-run: the message comes back after the visibility timeout, the
    run's heartbeat is stale by then, and a fresh worker resumes from the last checkpoint."""
    quick = {**WORKER_ENV, "IMAGINEER_JOB_STALE_SECONDS": "5", "CELERY_VISIBILITY_TIMEOUT": "4"}
    album = album_make(2)
    client.force_login(creator)
    first = celery_worker("gpu", extra_env=quick)
    run = _start(client, album, name="Survivor", max_steps=60, save_every=5, batch_size=1)
    wait_for(lambda: len(TrainingRun.objects.get(pk=run.pk).checkpoints) >= 1, timeout=120, message="a checkpoint")
    first.kill()
    run.refresh_from_db()
    killed_at = run.last_checkpoint["step"]
    assert (run.status, run.phase) == (TrainingRun.Status.RUNNING, TrainingRun.Phase.TRAINING) and run.current_step < 60

    celery_worker("gpu", extra_env=quick)
    run = _wait(run, {TrainingRun.Status.COMPLETED, TrainingRun.Status.FAILED}, timeout=180)
    assert run.status == TrainingRun.Status.COMPLETED, run.error
    assert run.attempts == 2 and run.current_step == 60 and killed_at >= 5
    assert [step for step, _ in run.loss_history] == list(range(1, 61))
