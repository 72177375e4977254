"""A generated image's A1111 infotext, from its job and recipe (the LoRAs' A1111 hashes from the library)."""

from __future__ import annotations

from typing import Any

from generation.engine.png import Infotext, InfotextLora, infotext_build
from generation.engine.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generation.models import Lora

VERSION = "imagineer 0.1.0"


def lora_a1111_hashes(sha256s: list[str]) -> dict[str, str]:
    """{sha256: A1111 hash} for library LoRAs; one registered before the field existed is hashed now."""
    from generation.engine.lora_hash import lora_file_hashes
    from generation.services.loras import lora_path

    found = {}
    for lora in Lora.objects.filter(sha256__in=sha256s):
        if not lora.a1111_hash:
            path = lora_path(lora)
            if not path.is_file():
                continue
            lora.a1111_hash = lora_file_hashes(path)[1]
            Lora.objects.filter(pk=lora.pk).update(a1111_hash=lora.a1111_hash)
        found[lora.sha256] = lora.a1111_hash
    return found


def recipe_infotext(recipe: dict[str, Any]) -> str:
    """The ``parameters`` text chunk for an image made from ``recipe`` (the JSON sidecar's content)."""
    scheduler = SCHEDULERS.get(recipe.get("scheduler") or DEFAULT_SCHEDULER) or SCHEDULERS[DEFAULT_SCHEDULER]
    hashes = lora_a1111_hashes([lora["sha256"] for lora in recipe["loras"]])
    # LoRAs the prompt names in <lora:...> tags of its own (generation.services.prompt_loras).
    tagged = {
        entry.get("sha256"): entry.get("name", "")
        for entry in (recipe.get("prompt_parts") or {}).get("lora_tags") or []
        if isinstance(entry, dict)
    }
    diffusers = recipe.get("libraries", {}).get("diffusers", "")
    return infotext_build(
        Infotext(
            prompt=recipe["prompt"],
            negative_prompt=recipe["negative_prompt"],
            steps=recipe["steps"],
            sampler=scheduler.sampler_label,
            schedule_type=scheduler.schedule_type,
            cfg_scale=recipe["guidance_scale"],
            seed=recipe["seed"],
            width=recipe["width"],
            height=recipe["height"],
            model_hash=recipe["model"]["sha256"],
            model=recipe["model"]["id"],
            # The engine draws every image's starting noise from a CPU generator seeded with its seed.
            rng="CPU",
            loras=[
                InfotextLora(
                    name=lora["name"],
                    weight=float(lora["weight"]),
                    a1111_hash=hashes.get(lora["sha256"], ""),
                    prompt_tag_name=tagged.get(lora["sha256"], ""),
                )
                for lora in recipe["loras"]
            ],
            version=f"{VERSION} diffusers {diffusers}".strip() if diffusers else VERSION,
            denoising_strength=recipe.get("denoising_strength"),
            extra=(("ControlNet 0", recipe["controlnet"]["infotext"]),) if recipe.get("controlnet") else (),
        )
    )
