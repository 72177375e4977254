"""Jobs steered by a layout guide, on the gpu worker: img2img from the guide, or ControlNet.

``job.guide`` (written when the job was made, see ``generation.steering``) says how; this module
reads the guide images, calls the engine (``generation.engine.img2img`` or
``generation.engine.controlnet``, both on the resident pipeline), and says what the recipe
records so the image can be made again: the guide (file and sha256), the strength or the
ControlNet (name, sha256, scale, start, end) and A1111's ``ControlNet 0`` infotext value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from PIL import Image as PILImage

from albums.services.files import media_path
from generation.engine.controlnet import (
    ControlRequest,
    ControlSettings,
    controlnet_for,
    controlnet_generate,
    controlnet_infotext,
)
from generation.engine.img2img import VaryRequest, img2img_generate
from generation.engine.runtime import BatchSettings, Engine, EngineError, GeneratedImage
from generation.models import GenerationJob

RESIZE_MODE = "Crop and Resize"  # guides are rendered at the job's size: nothing to resize


def guide_group_key(job: GenerationJob) -> str:
    """Jobs batch together only when they are steered the same way (the image may differ)."""
    how = {key: value for key, value in (job.guide or {}).items() if key not in ("image", "sha256")}
    return json.dumps(how, sort_keys=True)


def _guide_image(job: GenerationJob) -> Any:
    relative = job.guide.get("image")
    try:
        path = media_path(relative)
        with PILImage.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise EngineError(f"Job {job.pk}: its layout guide {relative!r} cannot be read ({exc}).") from None


def _control(job: GenerationJob) -> ControlSettings:
    guide = job.guide
    return ControlSettings(
        scale=float(guide.get("scale", 1.0)), start=float(guide.get("start", 0.0)), end=float(guide.get("end", 1.0))
    )


def guided_generate(
    engine: Engine,
    part: Sequence[GenerationJob],
    batch: BatchSettings,
    *,
    on_step: Callable[[int, int, Sequence[int]], None],
) -> list[GeneratedImage]:
    """Generate a batch of jobs steered alike (``guide_group_key``)."""
    first = part[0].guide
    if first.get("mode") == "controlnet":
        if not settings.IMAGINEER_CONTROLNET:
            raise EngineError("This job is steered by ControlNet, but IMAGINEER_CONTROLNET names no model here.")
        controlnet = controlnet_for(engine, Path(settings.IMAGINEER_CONTROLNET))
        requests = [ControlRequest(job.prompt, job.negative_prompt, job.seed, _guide_image(job)) for job in part]
        return controlnet_generate(
            engine, controlnet, requests, batch, _control(part[0]), on_step=on_step, batch_size=len(part)
        )
    requests_i2i = [VaryRequest(job.prompt, job.negative_prompt, job.seed, _guide_image(job)) for job in part]
    return img2img_generate(
        engine, requests_i2i, batch, strength=float(first["strength"]), on_step=on_step, batch_size=len(part)
    )


def guide_recipe(job: GenerationJob, engine: Engine) -> dict[str, Any]:
    """What a guided job's recipe adds (nothing for an unguided job)."""
    guide = dict(job.guide or {})
    if not guide:
        return {}
    if guide.get("mode") == "controlnet":
        controlnet = controlnet_for(engine, Path(settings.IMAGINEER_CONTROLNET))
        control = _control(job)
        return {
            "guide": guide,
            "controlnet": {
                "name": controlnet.name,
                "sha256": controlnet.sha256,
                "scale": control.scale,
                "start": control.start,
                "end": control.end,
                "infotext": controlnet_infotext(controlnet, control, resize_mode=RESIZE_MODE),
            },
        }
    return {"guide": guide, "denoising_strength": float(guide["strength"])}
