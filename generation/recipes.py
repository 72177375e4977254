"""Read the generation recipe in a PNG made by A1111, ComfyUI, InvokeAI, NovelAI or Imagineer.

sd-parsers tells the tools apart and reads their metadata; this module turns what it found
into one shape (prompt, negative, size, steps, guidance, seed, sampler, LoRAs). The file is
checked first, chunk by chunk, without decoding pixels: a PNG that is not one, is truncated,
claims more pixels than a decompression bomb would be allowed, or carries oversized (or
over-compressed) text chunks is refused with a message naming the problem. No Django here.
"""

from __future__ import annotations

import io
import json
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from generation.engine.png import infotext_parse, lora_hashes_parse, prompt_lora_tags
from generation.engine.schedulers import scheduler_from_sampler

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 64 * 1024 * 1024
MAX_TEXT_CHUNK = 1024 * 1024
MAX_TEXT_TOTAL = 4 * 1024 * 1024
TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


class RecipeError(ValueError):
    """The upload is not a PNG we can read a recipe from; the message says what is wrong."""


@dataclass(frozen=True)
class ForeignLora:
    name: str
    weight: float
    hash: str = ""  # a hex prefix (A1111's short hash) when the tool wrote one


@dataclass
class ForeignRecipe:
    generator: str  # "A1111", "ComfyUI", "InvokeAI", "NovelAI" or "Imagineer"
    prompt: str = ""
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    sampler: str = ""  # the tool's own sampler name
    schedule_type: str = ""  # the tool's own schedule (A1111 schedule type, ComfyUI scheduler)
    scheduler: str | None = None  # ours, when one matches
    model: str = ""
    loras: list[ForeignLora] = field(default_factory=list)


def png_check(data: bytes) -> tuple[int, int]:
    """Walk the PNG's chunks without decoding pixels; (width, height), or RecipeError naming the problem."""
    if len(data) > MAX_FILE_BYTES:
        raise RecipeError(f"The file is {len(data) / 1024**2:.1f} MB; a recipe PNG may be at most 32 MB.")
    if not data.startswith(PNG_SIGNATURE):
        raise RecipeError("This is not a PNG file (no PNG signature); only PNG recipes can be read.")
    position, size, text_total, seen_end = len(PNG_SIGNATURE), None, 0, False
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body_start, body_end = position + 8, position + 8 + length
        if body_end + 4 > len(data):
            raise RecipeError(
                f"The PNG is truncated: its {kind.decode('latin-1')} chunk runs past the end of the file."
            )
        body = data[body_start:body_end]
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise RecipeError("The PNG is damaged: it does not start with an image header (IHDR).")
            size = struct.unpack(">II", body[:8])
            if size[0] * size[1] > MAX_PIXELS:
                raise RecipeError(
                    f"The PNG claims {size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels): "
                    f"refused as a possible decompression bomb (limit {MAX_PIXELS / 1e6:.0f} megapixels)."
                )
        if kind in TEXT_CHUNKS:
            text_total += _text_chunk_size(kind, body)
            if text_total > MAX_TEXT_TOTAL:
                raise RecipeError(
                    f"The PNG's text chunks hold more than {MAX_TEXT_TOTAL // 1024**2} MB; no recipe is that large."
                )
        position = body_end + 4
        if kind == b"IEND":
            seen_end = True
            break
    if size is None or not seen_end:
        raise RecipeError("The PNG is truncated: it ends before its IEND chunk.")
    return size


def _text_chunk_size(kind: bytes, body: bytes) -> int:
    """The decoded size of one text chunk, refusing one over MAX_TEXT_CHUNK (compressed ones included)."""
    keyword = body.split(b"\0", 1)[0][:79].decode("latin-1", "replace") or "?"
    if len(body) > MAX_TEXT_CHUNK:
        raise RecipeError(
            f"The PNG's text chunk {keyword!r} is {len(body) / 1024**2:.1f} MB; a text chunk may be at most 1 MB."
        )
    compressed = None
    if kind == b"zTXt":
        compressed = body.split(b"\0", 1)[1][1:] if b"\0" in body else b""
    elif kind == b"iTXt":
        parts = body.split(b"\0", 1)[1] if b"\0" in body else b""
        if parts[:1] == b"\x01":
            # compression flag, method, then language and translated keyword (NUL-terminated)
            rest = parts[2:].split(b"\0", 2)
            compressed = rest[2] if len(rest) == 3 else b""
    if compressed is None:
        return len(body)
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_TEXT_CHUNK + 1)
    except zlib.error as exc:
        raise RecipeError(f"The PNG's text chunk {keyword!r} is damaged ({exc}).") from None
    if len(text) > MAX_TEXT_CHUNK or inflater.unconsumed_tail:
        raise RecipeError(
            f"The PNG's compressed text chunk {keyword!r} inflates to more than 1 MB: refused as a decompression bomb."
        )
    return len(text)


def recipe_read(data: bytes) -> ForeignRecipe:
    """The recipe in a PNG's metadata, or RecipeError saying why there is none we can use."""
    from PIL import Image, UnidentifiedImageError
    from sd_parsers import ParserManager
    from sd_parsers.data import Generators
    from sd_parsers.extractors import Eagerness

    width, height = png_check(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # Text chunks before the pixels first (where every tool writes them): no decoding.
                parsed = ParserManager().parse(image, eagerness=Eagerness.FAST)
            if parsed is None:
                with Image.open(io.BytesIO(data)) as image:
                    parsed = ParserManager().parse(image, eagerness=Eagerness.DEFAULT)
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise RecipeError(f"The PNG could not be read: {exc}.") from None
    except (KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise RecipeError(f"The PNG's metadata is malformed ({type(exc).__name__}: {exc}).") from None
    except Image.DecompressionBombWarning:
        raise RecipeError("The PNG is too large to read safely (a possible decompression bomb).") from None
    if parsed is None or not parsed.samplers:
        raise RecipeError(
            "This PNG carries no generation recipe that A1111, ComfyUI, InvokeAI, NovelAI or Imagineer writes "
            "(was its metadata stripped, e.g. by an image editor or a website?)."
        )
    readers = {
        Generators.AUTOMATIC1111: _a1111,
        Generators.COMFYUI: _comfyui,
        Generators.INVOKEAI: _invokeai,
        Generators.NOVELAI: _novelai,
    }
    reader = readers.get(parsed.generator)
    if reader is None:
        raise RecipeError(f"Recipes from {parsed.generator.value} are not supported.")
    recipe = reader(parsed)
    recipe.width = recipe.width or width
    recipe.height = recipe.height or height
    recipe.scheduler = scheduler_from_sampler(recipe.sampler, recipe.schedule_type)
    return recipe


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _joined(prompts: list[Any]) -> str:
    return ", ".join(str(prompt).strip() for prompt in prompts if str(prompt).strip())


def _a1111(parsed: Any) -> ForeignRecipe:
    sampler = parsed.samplers[0]
    # sd-parsers splits the settings line at every comma; quoted values (Lora hashes) need A1111's own rules.
    fields = infotext_parse(parsed.raw_parameters.get("parameters", ""))["fields"]
    generator = "Imagineer" if fields.get("Version", "").startswith("imagineer") else "A1111"
    prompt, tags = prompt_lora_tags(_joined(sampler.prompts))
    hashes = lora_hashes_parse(fields.get("Lora hashes", ""))
    size = re.match(r"^(\d+)x(\d+)$", fields.get("Size", ""))
    return ForeignRecipe(
        generator=generator,
        prompt=prompt,
        negative_prompt=_joined(sampler.negative_prompts),
        width=int(size[1]) if size else None,
        height=int(size[2]) if size else None,
        steps=_int(sampler.parameters.get("steps")),
        guidance_scale=_float(sampler.parameters.get("cfg_scale")),
        seed=_int(sampler.parameters.get("seed")),
        sampler=sampler.name,
        schedule_type=str(sampler.parameters.get("scheduler", "")),
        model=str(sampler.model or ""),
        loras=[ForeignLora(name=name, weight=weight, hash=hashes.get(name, "")) for name, weight in tags],
    )


def _comfyui(parsed: Any) -> ForeignRecipe:
    sampler = parsed.samplers[0]
    parameters = sampler.parameters
    latent = (parsed.metadata.get("EmptyLatentImage") or [{}])[0]
    graph = parsed.raw_parameters.get("prompt")
    graph = json.loads(graph) if isinstance(graph, str) else graph or {}
    loras = []
    for node in graph.values():
        if isinstance(node, dict) and node.get("class_type") in ("LoraLoader", "LoraLoaderModelOnly"):
            inputs = node.get("inputs") or {}
            name = PurePosixPath(str(inputs.get("lora_name", "")).replace("\\", "/")).stem
            if name:
                loras.append(ForeignLora(name=name, weight=_float(inputs.get("strength_model")) or 1.0))
    return ForeignRecipe(
        generator="ComfyUI",
        prompt=_joined(sampler.prompts),
        negative_prompt=_joined(sampler.negative_prompts),
        width=_int(latent.get("width")),
        height=_int(latent.get("height")),
        steps=_int(parameters.get("steps")),
        guidance_scale=_float(parameters.get("cfg_scale")),
        seed=_int(parameters.get("seed", parameters.get("noise_seed"))),
        sampler=sampler.name,
        schedule_type=str(parameters.get("scheduler", "")),
        loras=loras,
    )


def _invokeai(parsed: Any) -> ForeignRecipe:
    sampler = parsed.samplers[0]
    metadata = parsed.metadata
    loras = []
    for entry in metadata.get("loras") or []:
        if not isinstance(entry, dict):
            continue
        model = entry.get("model") or entry.get("lora") or {}
        name = model.get("name") or model.get("model_name") or ""
        if name:
            loras.append(ForeignLora(name=str(name), weight=_float(entry.get("weight")) or 1.0))
    return ForeignRecipe(
        generator="InvokeAI",
        prompt=_joined(sampler.prompts),
        negative_prompt=_joined(sampler.negative_prompts),
        width=_int(metadata.get("width")),
        height=_int(metadata.get("height")),
        steps=_int(sampler.parameters.get("steps")),
        guidance_scale=_float(sampler.parameters.get("cfg_scale")),
        seed=_int(sampler.parameters.get("seed")),
        sampler=sampler.name,
        model=str(sampler.model or ""),
        loras=loras,
    )


def _novelai(parsed: Any) -> ForeignRecipe:
    sampler = parsed.samplers[0]
    metadata = parsed.metadata
    return ForeignRecipe(
        generator="NovelAI",
        prompt=_joined(sampler.prompts),
        negative_prompt=_joined(sampler.negative_prompts),
        width=_int(metadata.get("width")),
        height=_int(metadata.get("height")),
        steps=_int(metadata.get("steps")),
        guidance_scale=_float(sampler.parameters.get("cfg_scale")),
        seed=_int(sampler.parameters.get("seed")),
        sampler=sampler.name,
        model=str(sampler.model or ""),
    )
