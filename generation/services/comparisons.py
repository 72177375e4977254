"""Deck comparisons: up to four runs of one template that differ in named settings.

Every variant is an ordinary run (its own deck); the comparison ties them together as columns.
Variants share one base seed by default (policy "increment"), so that two columns differ only
by the settings the variants name. Any cell can be picked into any of the comparison's decks
(``slot_pick`` accepts a take of the same card from a deck of the same template).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from generation.models import BatchGenerationRun, BatchTemplate, DeckComparison
from generation.services.jobs import seed_random
from generation.services.runs import run_start
from imagineer.errors import field_error
from imagineer.limits import limit_check

VARIANTS_MIN, VARIANTS_MAX = 2, 4
# What a variant may change (run overrides, plus the theme).
VARIANT_KEYS = ("theme", "style_suffix", "steps", "guidance_scale", "lora_weights", "seed", "seed_policy")


def variant_label(variant: dict[str, Any]) -> str:
    """The differences a column head prints: "theme: ink · LoRA inkwash 0.4"."""
    parts = []
    for key in VARIANT_KEYS:
        if key not in variant:
            continue
        value = variant[key]
        if key == "lora_weights":
            parts += [f"LoRA {name} {weight}" for name, weight in sorted(value.items())]
        elif key == "style_suffix":
            parts.append(f"style: {value.strip() or '(none)'}")
        else:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return " · ".join(parts) or "template settings"


@transaction.atomic
def comparison_start(
    *,
    template: BatchTemplate,
    variants: list[dict[str, Any]],
    theme: str = "",
    name: str = "",
    rows: list[int] | None = None,
    first: int | None = None,
    sample: int | None = None,
    created_by: User | None = None,
) -> DeckComparison:
    """One run per variant (in column order), all with the same seeds unless a variant says otherwise."""
    if not isinstance(variants, list) or not VARIANTS_MIN <= len(variants) <= VARIANTS_MAX:
        count = len(variants) if isinstance(variants, list) else variants
        raise field_error("variants", f"Compare {VARIANTS_MIN} to {VARIANTS_MAX} variants; got {count!r}.")
    for number, variant in enumerate(variants, start=1):
        if not isinstance(variant, dict):
            raise field_error("variants", f"Variant {number} must be an object of settings.")
        unknown = sorted(set(variant) - set(VARIANT_KEYS))
        if unknown:
            raise field_error(
                "variants",
                f"Variant {number}: {', '.join(unknown)} cannot vary; choose from {', '.join(VARIANT_KEYS)}.",
            )
    limit_check(user=created_by, runs=len(variants))
    base_seed = seed_random()
    comparison = DeckComparison.objects.create(
        template=template,
        name=(name.strip() or f"{template.name}: {len(variants)} variants")[:200],
        variants=[dict(variant) for variant in variants],
        created_by=created_by,
    )
    for number, variant in enumerate(variants):
        overrides = {key: value for key, value in variant.items() if key != "theme"}
        if "seed" not in overrides and "seed_policy" not in overrides:
            overrides.update(seed=base_seed, seed_policy="increment")
        run = run_start(
            template=template,
            theme=variant.get("theme", theme),
            album_name=f"{comparison.name} · {chr(ord('A') + number)}: {variant_label(variant)}"[:200],
            overrides=overrides,
            rows=rows,
            first=first,
            sample=sample,
            created_by=created_by,
        )
        BatchGenerationRun.objects.filter(pk=run.pk).update(comparison=comparison, variant=number)
    return comparison
