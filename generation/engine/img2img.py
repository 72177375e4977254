"""Image-to-image ("vary"): repaint an existing image at a strength, on the resident pipeline.

``StableDiffusionImg2ImgPipeline.from_pipe`` wraps the loaded text-to-image pipeline's own
modules (UNet, VAE, text encoder, scheduler, LoRA adapters): no second copy of the weights.
Requests are encoded and batched as ``Engine.generate`` does, with one CPU generator per
request used for both the VAE's latent sample and the added noise, so the same source, strength
and seed give the same image batched or alone.

Knows nothing of Django: the worker hands in PIL images and gets PIL images back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from generation.engine.prompt_syntax import WeightedChunk
from generation.engine.runtime import BatchSettings, Engine, GeneratedImage
from generation.engine.schedulers import DEFAULT_SCHEDULER


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
    engine.load()
    if engine.torch_threads:
        torch.set_num_threads(engine.torch_threads)
    engine.apply_loras(batch.loras)
    engine._scheduler_set(batch.scheduler or DEFAULT_SCHEDULER)
    # Built after the scheduler switch: from_pipe takes the pipeline's current components.
    pipe = img2img_pipeline(engine)
    size = batch_size or engine.batch_size(batch.width, batch.height)
    # Encoded exactly as Engine.generate does (A1111 attention weights, 75-token chunks, the
    # negative padded to the positive's chunk count), so a prompt means the same in both.
    encoded: list[tuple[list[WeightedChunk], list[WeightedChunk]]] = []
    empty = [WeightedChunk((), ())]
    for request in requests:
        positive, negative = engine.prompt_chunks(request.prompt), engine.prompt_chunks(request.negative_prompt)
        count = max(len(positive), len(negative))
        encoded.append((positive + empty * (count - len(positive)), negative + empty * (count - len(negative))))
    groups: dict[int, list[int]] = {}
    for index, (positive, _negative) in enumerate(encoded):
        groups.setdefault(len(positive), []).append(index)
    results: list[GeneratedImage | None] = [None] * len(requests)
    for chunk_count, indices in groups.items():
        for start in range(0, len(indices), size):
            part = indices[start : start + size]
            started = time.perf_counter()
            prompt_embeds = torch.cat([engine._encode(encoded[i][0]) for i in part])
            negative_embeds = torch.cat([engine._encode(encoded[i][1]) for i in part])
            generators = [torch.Generator("cpu").manual_seed(int(requests[i].seed)) for i in part]
            images = [
                requests[i].init_image.convert("RGB").resize((batch.width, batch.height))
                if requests[i].init_image.size != (batch.width, batch.height)
                else requests[i].init_image.convert("RGB")
                for i in part
            ]

            def callback(pipe: Any, step: int, timestep: Any, kwargs: dict, part: list[int] = part) -> dict:
                if on_step is not None:
                    on_step(step + 1, steps_run, part)
                return kwargs

            output = pipe(
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds,
                image=images,
                strength=strength,
                num_inference_steps=batch.steps,
                guidance_scale=batch.guidance_scale,
                generator=generators,
                callback_on_step_end=callback,
                output_type=output_type,
            )
            seconds = (time.perf_counter() - started) / len(part)
            for offset, index in enumerate(part):
                results[index] = GeneratedImage(
                    image=output.images[offset],
                    seconds=seconds,
                    prompt_chunks=chunk_count,
                    timings={"batch_size": len(part), "seconds_per_image": round(seconds, 4)},
                )
    return results  # type: ignore[return-value]
