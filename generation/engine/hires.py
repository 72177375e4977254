"""Hires fix, as A1111 does it: upscale the image (Lanczos), then an img2img pass at low denoise.

The upscaled picture has the right size but soft detail; repainting it at a low strength with
the same prompt and seed puts detail back without moving the composition. The img2img pass is
``generation.engine.img2img`` on the resident pipeline (no second copy of the weights).

Knows nothing of Django: the caller hands in PIL images and gets PIL images back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from generation.engine.img2img import VaryRequest, img2img_generate
from generation.engine.runtime import BatchSettings, Engine, LoraRef
from generation.engine.schedulers import DEFAULT_SCHEDULER

UPSCALER = "Lanczos"


@dataclass(frozen=True)
class HiresRequest:
    image: Any  # PIL.Image.Image: the picture to upscale
    prompt: str
    negative_prompt: str
    seed: int


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The target size: ``scale`` times the source, rounded to the multiple of 8 the VAE needs."""
    return max(8, round(width * scale / 8) * 8), max(8, round(height * scale / 8) * 8)


def hires_steps(steps: int, denoise: float) -> int:
    """Sampling steps so that img2img runs at least one: it runs ``int(steps * denoise)``."""
    return max(steps, math.ceil(1 / denoise))


def hires_fix(
    engine: Engine,
    request: HiresRequest,
    *,
    scale: float,
    denoise: float,
    steps: int,
    guidance_scale: float,
    scheduler: str = "",
    loras: Sequence[LoraRef] = (),
    on_step: Callable[[int, int, Sequence[int]], None] | None = None,
) -> Image.Image:
    """One picture at ``scale`` x its size, repainted at ``denoise``; the same inputs give the same pixels."""
    width, height = hires_size(request.image.width, request.image.height, scale)
    upscaled = request.image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    batch = BatchSettings(
        loras=tuple(loras),
        width=width,
        height=height,
        steps=hires_steps(steps, denoise),
        guidance_scale=guidance_scale,
        scheduler=scheduler or DEFAULT_SCHEDULER,
    )
    (result,) = img2img_generate(
        engine,
        [VaryRequest(request.prompt, request.negative_prompt, request.seed, upscaled)],
        batch,
        strength=denoise,
        on_step=on_step,
        batch_size=1,
    )
    return result.image


def hires_infotext_fields(*, scale: float, denoise: float, steps: int) -> dict[str, str]:
    """The A1111 infotext keys of a hires pass (``Hires upscale: 2, Hires upscaler: Lanczos, ...``)."""
    return {
        "Denoising strength": f"{denoise:g}",
        "Hires upscale": f"{scale:g}",
        "Hires steps": str(steps),
        "Hires upscaler": UPSCALER,
    }
