"""A1111 prompt syntax at submit time: refuse what cannot be drawn, resolve ``<lora:...>`` tags.

The engine reads weights and BREAK and cuts the tags out of the text
(``generation.engine.prompt_syntax``); here, before a job is stored, every tag is matched to a
library LoRA and merged into the job's stack, so that an unknown or unfit tag is a 400 naming
it, never an image drawn without it. A tag is matched, case-insensitively, by the LoRA's
name, its A1111 alias (the name as a tag can hold it) or its file name, else by a hash: the
first 8 or more hex digits of its A1111 hash or its sha256.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from generation.engine.lora_files import lora_fit_error
from generation.engine.png import lora_alias
from generation.engine.prompt_syntax import LoraTag, PromptSyntaxError, lora_tags, prompt_check
from generation.models import LORA_WEIGHT_MAX, LORA_WEIGHT_MIN, Lora
from imagineer.errors import field_error

MIN_HASH_PREFIX = 8
_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class InlineLora:
    lora: Lora
    weight: Decimal
    tag: LoraTag
    field: str  # the input the tag was written in, for messages


def prompt_syntax_validate(text: str, *, field: str, tags_allowed: bool = True) -> None:
    """A 400 on ``field`` for A1111 syntax we cannot draw (prompt editing, alternation, AND, odd tags)."""
    try:
        prompt_check(text or "")
        if not tags_allowed:
            found = lora_tags(text or "")
            if found:
                raise field_error(
                    field,
                    f"{found[0].text}: LoRA tags work in the prompt, not in the negative prompt; "
                    "move the tag to the prompt or remove it.",
                )
    except PromptSyntaxError as exc:
        raise field_error(field, str(exc), code="prompt_syntax") from None


def _names(lora: Lora) -> set[str]:
    return {lora.name.lower(), lora_alias(lora.name).lower(), Path(lora.file).stem.lower()}


def lora_tag_resolve(tag: LoraTag, *, library: Sequence[Lora], field: str) -> Lora:
    """The library LoRA a tag names, or a 400 naming the tag and the closest names."""
    wanted = tag.name.strip().lower()
    found = {lora.pk: lora for lora in library if wanted in _names(lora)}
    if not found and len(wanted) >= MIN_HASH_PREFIX and set(wanted) <= _HEX:
        found = {
            lora.pk: lora for lora in library if lora.a1111_hash.startswith(wanted) or lora.sha256.startswith(wanted)
        }
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        names = ", ".join(repr(lora.name) for lora in found.values())
        raise field_error(field, f"{tag.text} matches several LoRAs ({names}); write the full name of one.")
    candidates: dict[str, str] = {}
    for lora in library:
        for name in _names(lora):
            candidates.setdefault(name, lora.name)
    close = difflib.get_close_matches(wanted, list(candidates), n=6, cutoff=0.5)
    suggestions = list(dict.fromkeys(candidates[name] for name in close))[:3]
    hint = (
        f" Closest: {', '.join(repr(name) for name in suggestions)}."
        if suggestions
        else " No LoRA in the library has a similar name."
    )
    raise field_error(
        field, f"Unknown LoRA {tag.text}: no LoRA named {tag.name!r} is in the library.{hint}", code="lora_unknown"
    )


def prompt_loras_resolve(
    parts: Iterable[tuple[str, str]], *, library: Sequence[Lora] | None = None
) -> list[InlineLora]:
    """The LoRA tags of a prompt's parts, ``(field, text)`` in prompt order, resolved against the library.

    Syntax is checked too. The same LoRA tagged twice is refused: one adapter has one weight.
    """
    parts = [(field, text or "") for field, text in parts]
    found: list[tuple[str, LoraTag]] = []
    for field, text in parts:
        prompt_syntax_validate(text, field=field)
        found.extend((field, tag) for tag in lora_tags(text))
    if not found:
        return []
    library = list(Lora.objects.order_by("pk")) if library is None else library
    resolved: list[InlineLora] = []
    for field, tag in found:
        lora = lora_tag_resolve(tag, library=library, field=field)
        twice = next((item for item in resolved if item.lora.pk == lora.pk), None)
        if twice is not None:
            raise field_error(
                field, f"{tag.text} and {twice.tag.text} name the same LoRA ({lora.name!r}); tag each LoRA once."
            )
        weight = Decimal(str(tag.weight))
        if not LORA_WEIGHT_MIN <= weight <= LORA_WEIGHT_MAX:
            raise field_error(
                field, f"{tag.text}: the weight {tag.weight:g} is outside {LORA_WEIGHT_MIN}..{LORA_WEIGHT_MAX}."
            )
        resolved.append(InlineLora(lora=lora, weight=weight, tag=tag, field=field))
    return resolved


def inline_loras_fit(inline: Sequence[InlineLora], *, model_base: str) -> None:
    """A 400 naming the tag of a LoRA made for another base than the loaded model's."""
    for item in inline:
        problem = lora_fit_error(lora_name=item.lora.name, lora_base=item.lora.base, model_base=model_base)
        if problem:
            raise field_error(item.field, f"{item.tag.text}: {problem}", code="lora_unfit")


def inline_loras_record(inline: Sequence[InlineLora]) -> list[dict[str, Any]]:
    """What ``prompt_parts["lora_tags"]`` keeps of the tags: the infotext writes them as they were typed."""
    return [{"tag": item.tag.text, "name": item.tag.name, "sha256": item.lora.sha256} for item in inline]
