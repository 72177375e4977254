"""An image's recipe (what made it) and generating again from it.

A generated image's recipe is its job's settings; an image without a job (uploaded, scraped,
imported from another tool) may still carry one in ``Image.recipe``, read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User

from albums.models import Image
from generation.engine.schedulers import SCHEDULERS
from generation.models import GenerationJob, Lora
from generation.services.jobs import job_submit
from imagineer.errors import ApplicationError

# (prompt_parts key, label), in prompt order.
PROMPT_PARTS = (
    ("base_prompt", "Base prompt"),
    ("theme", "Theme"),
    ("row_text", "Row"),
    ("style_suffix", "Style suffix"),
)
# What the original system used when a stored recipe does not say.
RECIPE_DEFAULT_STEPS = 25
RECIPE_DEFAULT_GUIDANCE = 8.0


@dataclass(frozen=True)
class ImageRecipe:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    seed: int | None
    steps: int | None
    guidance_scale: float | None
    scheduler: str = ""
    model: str = ""
    # (label, text) of the prompt's parts, in prompt order
    parts: list[tuple[str, str]] = field(default_factory=list)
    # {"name", "weight", ...} per LoRA, in stack order
    loras: list[dict[str, Any]] = field(default_factory=list)


def _model_text(model: Any) -> str:
    if not isinstance(model, dict):
        return str(model or "")
    text = str(model.get("id") or model.get("name") or "")
    if model.get("sha256"):
        text += f" [{model['sha256'][:10]}]"
    if model.get("is_noise_model"):
        text += " (built-in noise model)"
    return text


def image_job(*, image: Image) -> GenerationJob | None:
    """The job that made this image, if it was generated here."""
    return GenerationJob.objects.filter(result_image=image).first()


def image_recipe(*, image: Image, job: GenerationJob | None) -> ImageRecipe | None:
    """What made the image: its job (``image_job``) when there is one, else its stored recipe."""
    stored = dict(image.recipe or {})
    if job is None and not stored:
        return None
    parts = (job.prompt_parts if job else None) or stored.get("prompt_parts") or {}
    loras = (job.lora_stack if job else None) or stored.get("loras") or []
    return ImageRecipe(
        prompt=(job.prompt if job else None) or image.prompt or stored.get("prompt", ""),
        negative_prompt=(job.negative_prompt if job else None) or image.negative_prompt or "",
        width=job.width if job else stored.get("width", image.width),
        height=job.height if job else stored.get("height", image.height),
        seed=job.seed if job else stored.get("seed"),
        steps=job.steps if job else stored.get("steps"),
        guidance_scale=job.guidance_scale if job else stored.get("guidance_scale"),
        scheduler=(job.scheduler if job else "") or stored.get("scheduler", ""),
        model=_model_text(stored.get("model")),
        parts=[(label, parts[key]) for key, label in PROMPT_PARTS if isinstance(parts.get(key), str) and parts[key]],
        loras=[lora for lora in loras if isinstance(lora, dict)],
    )


def image_regenerate(*, image: Image, new_seed: bool, created_by: User | None) -> GenerationJob:
    """Queue one job from the image's recipe: the same seed (the same picture) or a new one.

    Refused, with the reason, when the image has no recipe or a LoRA of its stack is no longer
    in the library.
    """
    job = image_job(image=image)
    recipe = image_recipe(image=image, job=job)
    if recipe is None or not recipe.prompt:
        raise ApplicationError("This image has no recipe to generate from.", code="no_recipe")
    names = [entry.get("name") for entry in recipe.loras]
    by_name = {lora.name: lora for lora in Lora.objects.filter(name__in=names)}
    missing = [str(name) for name in names if name not in by_name]
    if missing:
        raise ApplicationError(
            f"LoRA {', '.join(missing)} is no longer in the library; cannot repeat this recipe.", code="lora_missing"
        )
    stack = [
        (by_name[entry["name"]], Decimal(str(entry.get("weight", by_name[entry["name"]].default_weight))))
        for entry in recipe.loras
    ]
    return job_submit(
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt,
        width=recipe.width,
        height=recipe.height,
        steps=recipe.steps or RECIPE_DEFAULT_STEPS,
        guidance_scale=recipe.guidance_scale if recipe.guidance_scale is not None else RECIPE_DEFAULT_GUIDANCE,
        seed=None if new_seed else recipe.seed,
        loras=stack,
        # A scheduler named by another tool (an imported recipe) is not ours: use the default.
        scheduler=recipe.scheduler if recipe.scheduler in SCHEDULERS else None,
        # A layout guide (img2img init or ControlNet image) is part of the recipe.
        guide=(job.guide if job else None) or (image.recipe or {}).get("guide") or None,
        created_by=created_by,
    )
