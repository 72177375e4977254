"""Vary (img2img) on the resident tiny pipeline: reproducible, batch-independent, strength-ordered."""

from __future__ import annotations

import pytest

from generation.engine.img2img import VaryRequest, denoising_steps, img2img_generate, img2img_pipeline
from generation.engine.runtime import BatchSettings, ImageRequest
from generation.tests.support import pixel_difference

SMALL = BatchSettings(width=64, height=64, steps=4, guidance_scale=7.0)


@pytest.fixture(scope="module")
def source(engine):
    return engine.generate([ImageRequest("a ram with golden horns", "blurry", 11)], SMALL)[0].image


def test_the_img2img_pipeline_shares_the_resident_weights(engine):
    pipe = img2img_pipeline(engine)
    assert pipe.unet is engine.pipe.unet
    assert pipe.vae is engine.pipe.vae
    assert pipe.text_encoder is engine.pipe.text_encoder


def test_vary_is_reproducible_and_batched_equals_alone(engine, source):
    request = VaryRequest("a ram, watercolor", "blurry", 5, source)
    alone = img2img_generate(engine, [request], SMALL, strength=0.5)[0].image
    again = img2img_generate(engine, [request], SMALL, strength=0.5)[0].image
    assert pixel_difference(alone, again) == 0
    others = [VaryRequest("a bull, oil paint", "", 9, source), request, VaryRequest("a crab", "", 1, source)]
    batched = img2img_generate(engine, others, SMALL, strength=0.5, batch_size=3)
    assert batched[1].timings["batch_size"] == 3
    assert pixel_difference(alone, batched[1].image) <= 1
    assert pixel_difference(alone, batched[0].image) > 0


def test_a_lower_strength_stays_closer_to_the_source(engine, source):
    """Measured on the latents: the built-in model's VAE has random weights, so its decoder maps
    any latents to saturated noise (every output is ~45/255 from any other), and the pixels of
    two variations say nothing about how much of the source each kept."""
    import torch

    pipe = img2img_pipeline(engine)
    with torch.inference_mode():
        pixels = pipe.image_processor.preprocess(source).to(engine.device, engine.dtype)
        start = pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor

    def distance(strength: float) -> float:
        request = VaryRequest("a ram, watercolor", "blurry", 5, source)
        latents = img2img_generate(engine, [request], SMALL, strength=strength, output_type="latent")[0].image
        return float((latents - start).abs().mean())

    distances = {strength: distance(strength) for strength in (0.25, 0.5, 1.0)}
    assert distances[0.25] < distances[0.5] < distances[1.0], distances
    assert distances[0.25] * 4 < distances[1.0], distances


def test_progress_counts_the_steps_img2img_runs(engine, source):
    seen = []
    img2img_generate(
        engine,
        [VaryRequest("x", "", 1, source)],
        SMALL,
        strength=0.5,
        on_step=lambda step, steps, indices: seen.append((step, steps)),
    )
    assert seen == [(1, 2), (2, 2)]
    assert denoising_steps(4, 0.5) == 2
    with pytest.raises(ValueError, match="leaves no denoising step"):
        img2img_generate(engine, [VaryRequest("x", "", 1, source)], SMALL, strength=0.1)
