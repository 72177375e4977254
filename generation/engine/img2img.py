"""Image-to-image ("vary"): repaint an existing image at a strength, on the resident pipeline.

``StableDiffusionImg2ImgPipeline.from_pipe`` wraps the loaded text-to-image pipeline's own
modules (UNet, VAE, text encoder, scheduler, LoRA adapters): no second copy of the weights.
Requests are encoded and batched as ``Engine.generate`` does, with one CPU generator per
request used for both the VAE's latent sample and the added noise, so the same source, strength
and seed give the same image batched or alone.

Knows nothing of Django: the worker hands in PIL images and gets PIL images back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from generation.engine.runtime import BatchSettings, Engine, GeneratedImage, PipePart


@dataclass(frozen=True)
class VaryRequest:
    prompt: str
    negative_prompt: str
    seed: int
    init_image: Any  # PIL.Image.Image


def denoising_steps(steps: int, strength: float) -> int:
    """How many denoising steps img2img runs: diffusers (and A1111) run ``int(steps * strength)``."""
    return min(int(steps * strength), steps)


def img2img_pipeline(engine: Engine) -> Any:
    """An img2img pipeline over the engine's loaded modules (cheap: no weights are copied)."""
    from diffusers import StableDiffusionImg2ImgPipeline

    engine.load()
    pipe = StableDiffusionImg2ImgPipeline.from_pipe(engine.pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.inference_mode()
def img2img_generate(
    engine: Engine,
    requests: Sequence[VaryRequest],
    batch: BatchSettings,
    *,
    strength: float,
    on_step: Callable[[int, int, Sequence[int]], None] | None = None,
    batch_size: int | None = None,
    output_type: str = "pil",
) -> list[GeneratedImage]:
    """Variations for ``requests`` (same order); ``on_step(step, steps, indices)`` may raise GenerationCancelled.

    ``output_type="latent"`` returns each result's latents (a tensor) instead of a PIL image.
    """
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    steps_run = denoising_steps(batch.steps, strength)
    if steps_run < 1:
        raise ValueError(f"strength {strength} at {batch.steps} steps leaves no denoising step")
    engine.prepare(batch)
    # Built after the scheduler switch: from_pipe takes the pipeline's current components.
    pipe = img2img_pipeline(engine)

    def call(part: PipePart) -> Sequence[Any]:
        images = [_fitted(requests[i].init_image, batch.width, batch.height) for i in part.indices]
        return pipe(
            prompt_embeds=part.prompt_embeds,
            negative_prompt_embeds=part.negative_prompt_embeds,
            image=images,
            strength=strength,
            num_inference_steps=batch.steps,
            guidance_scale=batch.guidance_scale,
            generator=part.generators,
            callback_on_step_end=part.callback,
            output_type=output_type,
        ).images

    return engine.batched(requests, batch, call, steps=steps_run, on_step=on_step, batch_size=batch_size)


def _fitted(image: Any, width: int, height: int) -> Any:
    """The init image in RGB at the batch's size (resized only when it differs)."""
    rgb = image.convert("RGB")
    return rgb if rgb.size == (width, height) else rgb.resize((width, height))
