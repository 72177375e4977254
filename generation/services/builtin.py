"""The built-in batch templates shipped in data/ (card deck, tarot, zodiac)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from generation.models import BatchTemplate
from generation.services.templates import LoraStackEntry, csv_parse, template_save

DATA_DIR = Path(settings.BASE_DIR) / "data"


@dataclass(frozen=True)
class BuiltinResult:
    template: BatchTemplate
    created: bool
    changed: bool


def builtin_template_specs(data_dir: Path = DATA_DIR) -> list[dict]:
    return json.loads((data_dir / "builtin_templates.json").read_text(encoding="utf-8"))


@transaction.atomic
def builtin_templates_load(*, data_dir: Path = DATA_DIR) -> list[BuiltinResult]:
    """Create or refresh the built-in templates, matched by slug; running it twice changes nothing.

    A built-in template's LoRA stack is left as the curator set it.
    """
    results = []
    for spec in builtin_template_specs(data_dir):
        parsed = csv_parse((data_dir / spec["csv"]).read_bytes(), field=spec["csv"])
        existing = BatchTemplate.objects.filter(slug=spec["slug"]).first()
        fields = {
            "name": spec["name"],
            "description": spec.get("description", ""),
            "base_prompt": spec.get("base_prompt", ""),
            "prompt_template": spec["prompt_template"],
            "style_suffix": spec.get("style_suffix", ""),
            "negative_prompt": spec.get("negative_prompt", ""),
            "example_theme": spec.get("example_theme", ""),
            "title_template": spec.get("title_template", ""),
            "width": spec.get("width", 512),
            "height": spec.get("height", 512),
            "steps": spec.get("steps", 25),
            "guidance_scale": spec.get("guidance_scale", 8.0),
        }
        unchanged = (
            existing is not None
            and existing.columns == parsed.columns
            and existing.csv_data == parsed.rows
            and all(getattr(existing, key) == value for key, value in fields.items())
        )
        if unchanged and existing is not None:
            results.append(BuiltinResult(template=existing, created=False, changed=False))
            continue
        lora_stack = []
        if existing is not None:
            lora_stack = [
                LoraStackEntry(lora=entry.lora, weight=entry.weight)
                for entry in existing.lora_stack.select_related("lora")
            ]
        template = template_save(
            **fields,
            columns=parsed.columns,
            rows=parsed.rows,
            slug=spec["slug"],
            is_builtin=True,
            lora_stack=lora_stack,
            instance=existing,
        )
        results.append(BuiltinResult(template=template, created=existing is None, changed=True))
    return results
