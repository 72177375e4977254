"""Layout guides steering generation on a real gpu worker (tiny model, and a tiny random ControlNet
built offline from it): img2img from the guide at the template's strength, or ControlNet with
scale and start/end; recorded in the job, the recipe, the sidecar and the infotext; regenerable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image as PILImage

from albums.services.files import media_path
from cards.services.guides import layout_guide_save
from generation.engine.png import infotext_parse
from generation.models import BatchGenerationRun, GenerationJob
from generation.services.recipes import image_regenerate
from generation.services.runs import run_start
from generation.tests.support import WORKER_ENV
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SMALL = {"width": 64, "height": 64, "steps": 4, "seed": 77}


def _finished(run: BatchGenerationRun) -> BatchGenerationRun:
    def done() -> bool:
        run.refresh_from_db()
        return run.is_finished

    wait_for(done, timeout=180, message=f"run {run.pk} to finish")
    return run


def _pixels(image) -> np.ndarray:
    with PILImage.open(media_path(image.file.name)) as opened:
        return np.asarray(opened.convert("RGB"), dtype=np.int16)


def test_img2img_guide_is_the_init_image_recorded_and_regenerable(celery_worker, card_deck_template):
    layout_guide_save(template=card_deck_template, kind="playing_cards", mode="img2img", strength=0.6)
    celery_worker("gpu", extra_env=WORKER_ENV)
    run = _finished(run_start(template=card_deck_template, theme="ink", overrides=SMALL, rows=[0, 6]))
    assert run.status == BatchGenerationRun.Status.COMPLETED, run.error
    jobs = list(run.jobs.order_by("row_index").select_related("result_image"))
    for job in jobs:
        assert job.guide["mode"] == "img2img" and job.guide["strength"] == 0.6 and job.guide["kind"] == "playing_cards"
        guide_file = media_path(job.guide["image"])
        assert hashlib.sha256(guide_file.read_bytes()).hexdigest() == job.guide["sha256"]
        with PILImage.open(guide_file) as guide:
            assert guide.size == (64, 64)
        image = job.result_image
        assert image.recipe["guide"] == job.guide and image.recipe["denoising_strength"] == 0.6
        sidecar = json.loads(media_path(image.file.name).with_suffix(".json").read_text())
        assert sidecar["guide"]["sha256"] == job.guide["sha256"]
        with PILImage.open(media_path(image.file.name)) as opened:
            fields = infotext_parse(opened.info["parameters"])["fields"]
        assert fields["Denoising strength"] == "0.6"
    # Ace and Seven have different guides.
    assert jobs[0].guide["sha256"] != jobs[1].guide["sha256"]

    again = image_regenerate(image=jobs[1].result_image, new_seed=False, created_by=None)
    assert again.guide == jobs[1].guide

    def regenerated() -> bool:
        again.refresh_from_db()
        return again.is_finished

    wait_for(regenerated, timeout=120, message="the regenerated job")
    assert again.status == GenerationJob.Status.SUCCEEDED, again.error
    # The same picture: made alone now, in a batch of two before (the engine's tolerance, <= 1).
    assert np.abs(_pixels(again.result_image) - _pixels(jobs[1].result_image)).max() <= 1
    assert np.abs(_pixels(again.result_image) - _pixels(jobs[0].result_image)).max() > 5


def test_controlnet_guide_with_scale_start_end(celery_worker, card_deck_template, tiny_model_dir, tmp_path, settings):
    from generation.engine.controlnet import controlnet_tiny_build

    controlnet = controlnet_tiny_build(tiny_model_dir, tmp_path / "tiny-controlnet")
    settings.IMAGINEER_CONTROLNET = str(controlnet)
    weights_sha = hashlib.sha256((controlnet / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    layout_guide_save(
        template=card_deck_template,
        kind="playing_cards",
        mode="controlnet",
        controlnet_scale=1.5,
        control_start=0.1,
        control_end=0.9,
    )
    celery_worker("gpu", extra_env={**WORKER_ENV, "IMAGINEER_CONTROLNET": str(controlnet)})
    run = _finished(run_start(template=card_deck_template, theme="ink", overrides=SMALL, rows=[2]))
    assert run.status == BatchGenerationRun.Status.COMPLETED, run.error
    job = run.jobs.select_related("result_image").get()
    assert job.guide["mode"] == "controlnet"
    assert (job.guide["scale"], job.guide["start"], job.guide["end"]) == (1.5, 0.1, 0.9)
    recipe = job.result_image.recipe
    assert recipe["controlnet"]["sha256"] == weights_sha and "denoising_strength" not in recipe
    with PILImage.open(media_path(job.result_image.file.name)) as opened:
        fields = infotext_parse(opened.info["parameters"])["fields"]
    assert fields["ControlNet 0"] == (
        f"Module: none, Model: tiny-controlnet [{weights_sha[:8]}], Weight: 1.5, Resize Mode: Crop and Resize, "
        "Low Vram: False, Guidance Start: 0.1, Guidance End: 0.9, Pixel Perfect: False, Control Mode: Balanced"
    )

    # Without ControlNet configured, the same guide steers as an img2img init.
    settings.IMAGINEER_CONTROLNET = ""
    plain = _finished(run_start(template=card_deck_template, theme="ink", overrides=SMALL, rows=[2]))
    fallback = plain.jobs.select_related("result_image").get()
    assert fallback.guide["mode"] == "img2img" and fallback.guide["sha256"] == job.guide["sha256"]
    assert np.abs(_pixels(fallback.result_image) - _pixels(job.result_image)).max() > 0
