"""PNGs laid out the way each tool writes its recipe (from their documented formats), and hostile ones.

- A1111: one ``parameters`` tEXt chunk holding its infotext.
- ComfyUI: ``prompt`` (the API graph: node id -> class_type + inputs, links as [node, slot])
  and ``workflow`` (the editor graph; sd-parsers follows its ``links``:
  [link id, from node, from slot, to node, to slot, type]).
- InvokeAI 3+: ``invokeai_metadata``, a JSON object (positive_prompt, scheduler, loras...).
- NovelAI: ``Title``, ``Description`` (the prompt), ``Software``, ``Source`` (model + hash)
  and ``Comment`` (JSON: steps, sampler, seed, scale, uc = the negative prompt, size).
"""

from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image as PILImage
from PIL import PngImagePlugin

A1111_HASH = "0123456789ab"
A1111_TEXT = (
    "masterpiece, a castle on a hill: at dusk, (glowing windows:1.2)\n"
    "second line <lora:ink wash:0.7> <lora:missing style:1.1>\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 123456789, Size: 512x768, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "ink wash: {ink}, missing style: '
    f'{A1111_HASH}", Version: v1.10.1'
)

COMFYUI_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0,
            "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a tarot card, the moon", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, text", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "styles/ink wash.safetensors", "strength_model": 0.8, "strength_clip": 0.8,
            "model": ["4", 0], "clip": ["4", 1],
        },
    },
}  # fmt: skip
COMFYUI_WORKFLOW = {
    "last_node_id": 10,
    "last_link_id": 11,
    "nodes": [{"id": int(node_id), "type": node["class_type"]} for node_id, node in COMFYUI_PROMPT.items()],
    "links": [
        [1, 4, 0, 10, 0, "MODEL"], [2, 4, 1, 10, 1, "CLIP"], [3, 10, 0, 3, 0, "MODEL"], [4, 10, 1, 6, 0, "CLIP"],
        [5, 10, 1, 7, 0, "CLIP"], [6, 6, 0, 3, 1, "CONDITIONING"], [7, 7, 0, 3, 2, "CONDITIONING"],
        [8, 5, 0, 3, 3, "LATENT"], [9, 3, 0, 8, 0, "LATENT"], [10, 4, 2, 8, 1, "VAE"], [11, 8, 0, 9, 0, "IMAGE"],
    ],
    "version": 0.4,
}  # fmt: skip
INVOKEAI_METADATA = {
    "generation_mode": "txt2img",
    "positive_prompt": "a zodiac sign, leo, golden mane",
    "negative_prompt": "blurry",
    "width": 576,
    "height": 512,
    "seed": 7,
    "rand_device": "cpu",
    "cfg_scale": 7.5,
    "cfg_rescale_multiplier": 0,
    "steps": 25,
    "scheduler": "euler_a",
    "model": {"key": "a1b2", "hash": "blake3:00ff", "name": "stable-diffusion-v1-5", "base": "sd-1", "type": "main"},
    "loras": [
        {
            "model": {"key": "c3d4", "hash": "blake3:11ee", "name": "paper", "base": "sd-1", "type": "lora"},
            "weight": 0.6,
        }
    ],
    "app_version": "4.2.9",
}
NOVELAI_COMMENT = {
    "steps": 28,
    "sampler": "k_euler_ancestral",
    "seed": 1234,
    "strength": 0.7,
    "noise": 0.2,
    "scale": 11.0,
    "uc": "lowres, bad anatomy",
    "width": 512,
    "height": 768,
}


def png_with_text(chunks: dict[str, str], *, size: tuple[int, int] = (16, 24), compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value, zip=compressed)
    buffer = io.BytesIO()
    PILImage.new("RGB", size, (90, 30, 140)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def a1111_png(ink_hash: str) -> bytes:
    return png_with_text({"parameters": A1111_TEXT.replace("{ink}", ink_hash)})


def comfyui_png() -> bytes:
    return png_with_text({"prompt": json.dumps(COMFYUI_PROMPT), "workflow": json.dumps(COMFYUI_WORKFLOW)})


def invokeai_png() -> bytes:
    return png_with_text({"invokeai_metadata": json.dumps(INVOKEAI_METADATA)})


def novelai_png() -> bytes:
    return png_with_text(
        {
            "Title": "AI generated image",
            "Description": "a playing card, queen of hearts",
            "Software": "NovelAI",
            "Source": "Stable Diffusion 1D44365E",
            "Comment": json.dumps(NOVELAI_COMMENT),
        },
        compressed=True,
    )


# --- hostile files -----------------------------------------------------------------------------


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def raw_png(*chunks: bytes, width: int = 16, height: int = 16) -> bytes:
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"".join(b"\0" + b"\0" * width * 3 for _ in range(min(height, 16)))))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + pixels + chunk(b"IEND", b"")


def huge_text_png() -> bytes:
    return raw_png(chunk(b"tEXt", b"parameters\0" + b"a" * (2 * 1024 * 1024)))


def text_bomb_png() -> bytes:
    """A 50 MB text chunk compressed into a few dozen KB (zTXt)."""
    return raw_png(chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * (50 * 1024 * 1024), 9)))


def pixel_bomb_png() -> bytes:
    """A header claiming 100000 x 100000 pixels."""
    return raw_png(width=100_000, height=100_000)


def truncated_png() -> bytes:
    return a1111_png("f" * 12)[:-40]
