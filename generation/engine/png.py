"""AUTOMATIC1111's infotext (the PNG ``parameters`` text chunk): written field for field, read back.

The layout A1111 writes (``modules/processing.py: create_infotext``)::

    <prompt, newlines kept, LoRAs as <lora:name:weight> tags>
    Negative prompt: <negative, newlines kept>
    Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x720,
    Model hash: 0123abcd45, Model: name, RNG: CPU, Lora hashes: "a: 0123abcd4567, b: ...", Version: ...

on one last line, fields in that order, ``None`` fields left out, and a value quoted as a JSON
string when it holds ``,``, ``:`` or a newline. A1111 rebuilds a LoRA stack only from the
``<lora:name:weight>`` tags in the prompt; ``Lora hashes`` (alias: first 12 hex of the
file's A1111 hash) lets it find the same file under another name. A1111 reads the last line
as settings only when it holds at least three ``key: value`` pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generation.engine import prompt_syntax

# A1111's own pattern for one ``key: value`` pair of the settings line.
_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# A1111 drops these from a LoRA's alias in "Lora hashes"; a tag cannot hold ':' or '>' either.
_ALIAS_DROP = re.compile(r"[:,<>\n\r]")


@dataclass(frozen=True)
class InfotextLora:
    name: str
    weight: float
    a1111_hash: str  # the full A1111 hash; the infotext carries its first 12 hex digits
    # The name its ``<lora:...>`` tag already in the prompt uses; such a LoRA gets no second tag.
    prompt_tag_name: str = ""

    @property
    def alias(self) -> str:
        return lora_alias(self.prompt_tag_name or self.name)


@dataclass(frozen=True)
class Infotext:
    """Everything our PNGs say in A1111's terms."""

    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    schedule_type: str
    cfg_scale: float
    seed: int
    width: int
    height: int
    model_hash: str = ""
    model: str = ""
    rng: str = "CPU"
    loras: Sequence[InfotextLora] = ()
    version: str = ""
    # img2img: how much of the source was repainted (A1111 writes it only for img2img).
    denoising_strength: float | None = None
    # Extensions' keys, in order, after the core ones (e.g. ("ControlNet 0", "Module: none, ...")).
    extra: tuple[tuple[str, str], ...] = ()


def quote(value: Any) -> str:
    """A1111's ``infotext_utils.quote``: a JSON string when the value holds ``,``, ``:`` or a newline."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def lora_alias(name: str) -> str:
    """A LoRA's name as it can stand in a ``<lora:...>`` tag and in ``Lora hashes``."""
    return " ".join(_ALIAS_DROP.sub("", name).split()) or "lora"


def _number(value: float) -> str:
    return f"{value:g}"


def lora_tags(loras: Sequence[InfotextLora]) -> str:
    """Tags for the LoRAs the prompt does not already name in a tag of its own."""
    return " ".join(f"<lora:{lora.alias}:{_number(lora.weight)}>" for lora in loras if not lora.prompt_tag_name)


def infotext_build(info: Infotext) -> str:
    prompt = info.prompt
    tags = lora_tags(info.loras)
    if tags:
        prompt = f"{prompt} {tags}" if prompt else tags
    hashes = ", ".join(f"{lora.alias}: {lora.a1111_hash[:12]}" for lora in info.loras if lora.a1111_hash)
    fields: dict[str, Any] = {
        "Steps": info.steps,
        "Sampler": info.sampler,
        "Schedule type": info.schedule_type or None,
        "CFG scale": float(info.cfg_scale),
        "Seed": info.seed,
        "Size": f"{info.width}x{info.height}",
        "Model hash": info.model_hash[:10] or None,
        "Model": info.model or None,
        "Denoising strength": _number(info.denoising_strength) if info.denoising_strength is not None else None,
        **dict(info.extra),
        # A1111 leaves RNG out when it is its default, the GPU.
        "RNG": info.rng if info.rng != "GPU" else None,
        "Lora hashes": hashes or None,
        "Version": info.version or None,
    }
    settings = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items() if value is not None)
    negative = f"\nNegative prompt: {info.negative_prompt}" if info.negative_prompt else ""
    return f"{prompt}{negative}\n{settings}".strip()


def infotext_parse(text: str) -> dict[str, Any]:
    """A1111's ``parse_generation_parameters`` reading rules: {"prompt", "negative_prompt", "fields"}.

    ``fields`` holds the settings line's values, unquoted, as strings.
    """
    *lines, last = text.strip().split("\n")
    if len(_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields = {key: unquote(value) for key, value in _FIELD.findall(last)}
    return {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative), "fields": fields}


def prompt_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its LoRA tags, and those tags' (name, weight) pairs.

    Tags are read as A1111 reads them (``<lora:name:weight>``, ``<lyco:...>``, no weight = 1,
    ``te=``/``unet=``; ``generation.engine.prompt_syntax``); one we cannot apply (two different
    weights, a DyLoRA rank) stays in the prompt, where submitting it explains why.
    """
    found: list[tuple[str, float]] = []

    def take(match: re.Match[str]) -> str:
        try:
            tags = prompt_syntax.lora_tags(match.group(0))
        except prompt_syntax.PromptSyntaxError:
            return match.group(0)
        found.extend((tag.name, tag.weight) for tag in tags)
        return "" if tags else match.group(0)

    stripped = prompt_syntax.EXTRA_NETWORK.sub(take, prompt)
    stripped = re.sub(r"[ \t]+(\n|$)", r"\1", re.sub(r"[ \t]{2,}", " ", stripped)).strip()
    return stripped, found


def lora_hashes_parse(value: str) -> dict[str, str]:
    """A1111's ``Lora hashes`` value (``alias: hash, ...``) as {alias: short hash}."""
    result = {}
    for item in value.split(","):
        alias, _, short = item.partition(":")
        if alias.strip() and short.strip():
            result[alias.strip()] = short.strip().lower()
    return result
