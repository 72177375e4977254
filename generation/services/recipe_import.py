"""Import a PNG's generation recipe into the single-image form: values mapped to ours, LoRAs matched.

A LoRA named in the recipe is matched to the library by its hash first (A1111's short hash
of the file, or our sha256), then by name (the library name, its A1111 alias, or the file
name). One that matches nothing is listed, not dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from generation.engine.png import lora_alias
from generation.engine.prompt_syntax import PromptSyntaxError, prompt_check
from generation.engine.schedulers import SCHEDULERS
from generation.models import Lora
from generation.recipes import ForeignLora, ForeignRecipe, RecipeError, recipe_read
from imagineer.errors import field_error

MIN_HASH_PREFIX = 8


@dataclass
class MatchedLora:
    lora: Lora
    weight: float
    matched_by: str  # "hash" or "name"


@dataclass
class RecipeImport:
    recipe: ForeignRecipe
    loras: list[MatchedLora] = field(default_factory=list)
    unmatched: list[ForeignLora] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def form_initial(self) -> dict[str, Any]:
        """Initial values for ``GenerateForm`` (LoRA weights as ``lora_<id>``)."""
        recipe = self.recipe
        values = {
            "prompt": recipe.prompt,
            "negative_prompt": recipe.negative_prompt,
            "width": recipe.width,
            "height": recipe.height,
            "steps": recipe.steps,
            "guidance_scale": recipe.guidance_scale,
            "seed": recipe.seed,
            "scheduler": recipe.scheduler,
        }
        initial = {name: value for name, value in values.items() if value not in (None, "")}
        initial.update({f"lora_{match.lora.pk}": match.weight for match in self.loras})
        return initial


def _lora_match(wanted: ForeignLora, library: list[Lora]) -> tuple[Lora, str] | None:
    short = wanted.hash.lower()
    if len(short) >= MIN_HASH_PREFIX:
        for lora in library:
            if lora.a1111_hash.startswith(short) or lora.sha256.startswith(short):
                return lora, "hash"
    name = wanted.name.strip().lower()
    alias = lora_alias(wanted.name).lower()
    for lora in library:
        names = {lora.name.lower(), lora_alias(lora.name).lower(), Path(lora.file).stem.lower()}
        if name in names or alias in names:
            return lora, "name"
    return None


def recipe_import(*, data: bytes) -> RecipeImport:
    """Read ``data`` (a PNG's bytes); ApplicationError on the ``file`` field when it holds no usable recipe."""
    try:
        recipe = recipe_read(data)
    except RecipeError as exc:
        raise field_error("file", str(exc)) from None
    result = RecipeImport(recipe=recipe)
    if recipe.loras:
        # A library is tens to hundreds of entries: matched in Python, hash before name.
        library = list(Lora.objects.order_by("pk"))
        for wanted in recipe.loras:
            found = _lora_match(wanted, library)
            if found is None:
                result.unmatched.append(wanted)
            else:
                result.loras.append(MatchedLora(lora=found[0], weight=wanted.weight, matched_by=found[1]))
    if recipe.scheduler is None:
        default = settings.IMAGINEER_SCHEDULER
        recipe.scheduler = default
        if recipe.sampler:
            result.notes.append(
                f"The sampler {recipe.sampler!r}{f' ({recipe.schedule_type})' if recipe.schedule_type else ''} has no "
                f"equivalent here; {default} ({SCHEDULERS[default].sampler_label}) is selected instead."
            )
    for label, text in (("prompt", recipe.prompt), ("negative prompt", recipe.negative_prompt)):
        try:
            prompt_check(text)
        except PromptSyntaxError as exc:
            result.notes.append(
                f"The {label} uses A1111 syntax that is not drawn here ({exc}); edit it before generating."
            )
    if recipe.model:
        result.notes.append(f"Made with the model {recipe.model!r}; images here use the model this server runs.")
    return result
