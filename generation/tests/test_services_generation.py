"""Job, run and LoRA services without a worker: validation, snapshots, seeds, refusals."""

from __future__ import annotations

import os
import random
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from generation.engine.lora_make import lora_make_sdxl_shaped
from generation.models import BatchGenerationRun, GenerationJob, Lora
from generation.selectors import engine_status, job_list, run_progress
from generation.services.jobs import job_cancel, job_submit
from generation.services.loras import lora_delete, lora_register, lora_upload
from generation.services.runs import run_cancel, run_retry, run_start
from generation.services.themes import theme_random
from imagineer.errors import ApplicationError
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, LoraFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sd15_lora_file(settings, engine) -> Path:
    from generation.engine.lora_make import lora_make_random

    return lora_make_random(engine.pipe, Path(settings.LORA_ROOT) / "cards.safetensors", rank=4, alpha=8, seed=3)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt": " "}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"width": 500}, "width"),
        ({"height": 4096}, "height"),
        ({"steps": 0}, "steps"),
        ({"steps": 151}, "steps"),
        ({"guidance_scale": 31}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"scheduler": "warp-drive"}, "scheduler"),
    ],
)
def test_job_submit_refuses_bad_input_with_field_errors(kwargs, field):
    with pytest.raises(ApplicationError) as error:
        job_submit(**{"prompt": "a cat", **kwargs})
    assert field in error.value.fields
    assert not GenerationJob.objects.exists()


def test_job_submit_refuses_a_lora_weight_out_of_range_and_an_unfit_base():
    lora = LoraFactory(name="xl-style", base=Lora.Base.SDXL)
    with pytest.raises(ApplicationError) as error:
        job_submit(prompt="a cat", loras=[(lora, Decimal("1"))])
    message = error.value.fields["loras"][0]
    assert "'xl-style'" in message and "SDXL" in message and "SD 1.x" in message
    with pytest.raises(ApplicationError, match="outside"):
        job_submit(prompt="a cat", loras=[(LoraFactory(), Decimal("2.5"))])


def test_job_submit_stores_seed_and_lora_snapshot_and_enqueues_on_commit(django_capture_on_commit_callbacks):
    lora = LoraFactory(name="cards")
    with django_capture_on_commit_callbacks() as callbacks:
        job = job_submit(prompt="a cat", width=64, height=64, steps=2, loras=[(lora, Decimal("0.6"))])
    assert 0 <= job.seed < 2**32 and job.task_id and job.status == GenerationJob.Status.QUEUED
    assert job.lora_stack == [{"id": lora.pk, "name": "cards", "sha256": lora.sha256, "weight": "0.60"}]
    assert len(callbacks) == 1
    assert list(job_list(status="queued")) == [job]
    job = job_cancel(job=job)
    assert job.status == GenerationJob.Status.CANCELLED
    with pytest.raises(ApplicationError, match="already finished"):
        job_cancel(job=job)


def test_run_start_builds_prompts_seeds_and_album_now(django_capture_on_commit_callbacks, settings):
    settings.IMAGINEER_CHUNK_SIZE = 2
    template = BatchTemplateFactory()
    entry = BatchTemplateLoraFactory(template=template, weight=Decimal("0.60"))
    with django_capture_on_commit_callbacks() as callbacks:
        run = run_start(
            template=template,
            theme="art deco",
            overrides={"seed": 41, "seed_policy": "increment", "lora_weights": {entry.lora.name: "0.3"}},
        )
    assert len(callbacks) == 2  # 3 rows in chunks of 2
    assert run.album.source_type == "batch_generation" and run.album.name == f"{template.name}: art deco"
    jobs = list(run.jobs.order_by("row_index"))
    assert [job.seed for job in jobs] == [41, 42, 43]
    assert jobs[0].prompt == "a zodiac card, art deco, Aries, fire element, high detail"
    assert jobs[0].lora_stack[0]["weight"] == "0.30"
    assert run.template_snapshot["prompt_template"] == template.prompt_template
    progress = run_progress(run=run)
    assert (progress["status"], progress["total"], progress["queued"], progress["current_item"]) == (
        "queued",
        3,
        3,
        None,
    )
    assert [item["row_index"] for item in progress["items"]] == [0, 1, 2]

    run = run_cancel(run=run)
    assert run.status == BatchGenerationRun.Status.CANCELLED
    assert set(run.jobs.values_list("status", flat=True)) == {"cancelled"}
    with django_capture_on_commit_callbacks() as callbacks:
        run = run_retry(run=run)
    assert run.status == BatchGenerationRun.Status.RUNNING and len(callbacks) == 2
    assert set(run.jobs.values_list("status", flat=True)) == {"queued"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"width": 65}, "width"),
        ({"steps": 500}, "steps"),
        ({"seed_policy": "chaos"}, "seed_policy"),
        ({"lora_weights": {"nope": 1}}, "lora_weights"),
        ({"colour": "red"}, "overrides"),
    ],
)
def test_run_start_refuses_bad_overrides_and_writes_nothing(overrides, field):
    template = BatchTemplateFactory()
    with pytest.raises(ApplicationError) as error:
        run_start(template=template, theme="x", overrides=overrides)
    assert field in error.value.fields
    assert not BatchGenerationRun.objects.exists() and not GenerationJob.objects.exists()


def test_lora_register_detects_and_refuses(settings, sd15_lora_file, tmp_path):
    lora = lora_register(path=sd15_lora_file)
    assert (lora.name, lora.base, lora.rank, lora.alpha, lora.file) == ("cards", "sd15", 4, 8.0, "cards.safetensors")
    with pytest.raises(ApplicationError, match="already in the library"):
        lora_register(path=sd15_lora_file, name="again")
    outside = lora_make_sdxl_shaped(tmp_path / "outside.safetensors")
    with pytest.raises(ApplicationError, match="not under the LoRA folder"):
        lora_register(path=outside)
    pickle = Path(settings.LORA_ROOT) / "old.ckpt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(ApplicationError, match="pickle"):
        lora_register(path=pickle)


def test_lora_upload_scan_and_delete(settings, sd15_lora_file):
    xl = lora_make_sdxl_shaped(Path(settings.LORA_ROOT) / "sub" / "xl.safetensors")
    call_command("register_loras")
    assert dict(Lora.objects.values_list("name", "base")) == {"cards": "sd15", "xl": "sdxl"}
    upload = SimpleUploadedFile("My Style.safetensors", xl.read_bytes().replace(b"2048", b"2048"))
    with pytest.raises(ApplicationError, match="already in the library"):
        lora_upload(uploaded_file=upload)
    assert not list((Path(settings.LORA_ROOT) / "uploads").glob("*"))  # nothing left behind
    with pytest.raises(ApplicationError, match="pickle"):
        lora_upload(uploaded_file=SimpleUploadedFile("bad.ckpt", b"\x80\x04"))

    cards = Lora.objects.get(name="cards")
    template = BatchTemplateFactory(name="Deck")
    BatchTemplateLoraFactory(template=template, lora=cards)
    with pytest.raises(ApplicationError, match="used by template Deck"):
        lora_delete(lora=cards)
    xl_row = Lora.objects.get(name="xl")
    lora_delete(lora=xl_row)
    assert not Lora.objects.filter(name="xl").exists()


def test_theme_random_is_varied_and_seedable():
    assert theme_random(rng=random.Random(1)) == theme_random(rng=random.Random(1))
    assert len({theme_random() for _ in range(20)}) > 10


def test_engine_status_without_workers_says_what_is_configured():
    status = engine_status()
    assert status["loaded"] is False and status["is_noise_model"] is True
    assert status["model_id"] == "imagineer/tiny-sd15-random" and "noise" in status["noise_note"]


def test_admin_lora_upload_registers_the_file_and_refuses_pickles(staff_client, settings, engine, tmp_path):
    from django.urls import reverse

    from generation.engine.lora_make import lora_make_random

    source = lora_make_random(engine.pipe, tmp_path / "ink wash.safetensors", rank=2, seed=9)
    url = reverse("admin:generation_lora_add")
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"upload": SimpleUploadedFile("bad.ckpt", b"\x80\x04"), "default_weight": "1"})
    assert response.status_code == 200 and b"pickle" in response.content
    with source.open("rb") as handle:
        response = staff_client.post(url, {"upload": handle, "trigger_words": "inkwash", "default_weight": "0.7"})
    assert response.status_code == 302, response.content[:2000]
    lora = Lora.objects.get()
    assert (lora.name, lora.base, lora.rank, lora.trigger_words, lora.source) == (
        "ink wash",
        "sd15",
        2,
        "inkwash",
        "upload",
    )
    assert (Path(settings.LORA_ROOT) / lora.file).is_file()


def test_web_side_modules_do_not_import_torch():
    import subprocess
    import sys

    from django.conf import settings

    code = (
        "import django, sys; django.setup();"
        "import generation.services.jobs, generation.services.runs, generation.services.loras, generation.selectors,"
        " generation.tasks, generation.admin, imagineer.urls;"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "imagineer.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
