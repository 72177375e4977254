"""Read a LoRA file's tensor names and shapes from its safetensors header, without torch.

The base architecture is told apart by what the tensors are, not by file size:
- SDXL: a second text encoder (``lora_te2_``/``text_encoder_2``) or cross-attention over
  2048-wide embeddings;
- SD2.x: cross-attention over 1024-wide embeddings (OpenCLIP ViT-H);
- SD1.x: cross-attention over 768-wide embeddings (CLIP ViT-L).
The cross-attention width is the input width of a LoRA ``down``/``A`` matrix of an ``attn2``
``to_k``/``to_v`` projection, the layer that reads the text embeddings.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_LIMIT = 100 * 1024 * 1024
BASE_BY_CROSS_ATTENTION = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
BASE_LABELS = {"sd15": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "unknown": "unknown"}
_DOWN = re.compile(r"(lora_down|lora_A|lora\.down)(\.[^.]+)?\.weight$")
_CROSS_KV = re.compile(r"attn2[._](processor[._])?to_[kv]")
_SDXL_MARKERS = ("lora_te2_", "text_encoder_2.", "te2.", "add_embedding", "label_emb")


class LoraFileError(ValueError):
    """The file is not a LoRA we can read; the message says why."""


@dataclass(frozen=True)
class LoraInfo:
    base: str
    rank: int | None
    alpha: float | None
    cross_attention_dim: int | None
    tensor_count: int

    @property
    def base_label(self) -> str:
        return BASE_LABELS.get(self.base, self.base)


def safetensors_header(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The tensor table ({name: {dtype, shape, data_offsets}}) and the ``__metadata__`` of a file."""
    if path.suffix.lower() != ".safetensors":
        if path.suffix.lower() in {".ckpt", ".pt", ".pth", ".bin", ".pkl"}:
            raise LoraFileError(
                f"{path.name} is a pickle file ({path.suffix}); pickles can run code when loaded, so only "
                ".safetensors files are accepted. Convert it to .safetensors first."
            )
        raise LoraFileError(f"{path.name} is not a .safetensors file; only .safetensors LoRAs are accepted.")
    try:
        with path.open("rb") as handle:
            raw_length = handle.read(8)
            if len(raw_length) != 8:
                raise LoraFileError(f"{path.name} is too short to be a safetensors file.")
            (length,) = struct.unpack("<Q", raw_length)
            if not 2 <= length <= HEADER_LIMIT:
                raise LoraFileError(f"{path.name} has no valid safetensors header (header length {length}).")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, LoraFileError):
            raise
        raise LoraFileError(f"{path.name} is not a readable safetensors file: {exc}.") from None
    if not isinstance(header, dict):
        raise LoraFileError(f"{path.name} has a malformed safetensors header.")
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata


def lora_inspect(path: Path) -> LoraInfo:
    tensors, metadata = safetensors_header(path)
    if not tensors:
        raise LoraFileError(f"{path.name} holds no tensors.")
    names = list(tensors)
    downs = {name: tensors[name]["shape"] for name in names if _DOWN.search(name)}
    if not downs:
        raise LoraFileError(
            f"{path.name} has no LoRA down/A matrices: it is not a LoRA (a full checkpoint or an embedding?)."
        )
    rank = next((shape[0] for shape in downs.values() if shape), None)
    cross = None
    for name, shape in downs.items():
        if _CROSS_KV.search(name) and ("unet" in name or "lora_unet" in name) and len(shape) >= 2:
            cross = int(shape[1])
            break
    if any(marker in name for name in names for marker in _SDXL_MARKERS) or cross == 2048:
        base = "sdxl"
    else:
        base = BASE_BY_CROSS_ATTENTION.get(cross or 0, "unknown")
    alpha = _alpha(tensors, metadata, path)
    return LoraInfo(base=base, rank=rank, alpha=alpha, cross_attention_dim=cross, tensor_count=len(names))


def _alpha(tensors: dict[str, dict], metadata: dict[str, str], path: Path) -> float | None:
    """Kohya files keep alpha in ``.alpha`` tensors or ``ss_network_alpha``; diffusers in ``lora_adapter_metadata``."""
    if "ss_network_alpha" in metadata:
        try:
            return float(metadata["ss_network_alpha"])
        except ValueError:
            return None
    raw = metadata.get("lora_adapter_metadata") or metadata.get("unet_lora_adapter_metadata")
    if raw:
        try:
            adapter = json.loads(raw)
            adapter = adapter.get("unet", adapter) if isinstance(adapter, dict) else {}
            for key in ("lora_alpha", "unet.lora_alpha"):
                if key in adapter:
                    return float(adapter[key])
        except (ValueError, AttributeError, TypeError):
            return None
    if any(name.endswith(".alpha") for name in tensors):
        # The value is in the tensor data; reading it needs the data, not just the header.
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            name = next(name for name in tensors if name.endswith(".alpha"))
            return float(handle.get_tensor(name))
    return None


def lora_fit_error(*, lora_name: str, lora_base: str, model_base: str) -> str | None:
    """Why a LoRA of ``lora_base`` cannot be used with a model of ``model_base``, or None when it can."""
    if lora_base in ("unknown", "") or model_base in ("unknown", "") or lora_base == model_base:
        return None
    return (
        f"LoRA {lora_name!r} is made for {BASE_LABELS.get(lora_base, lora_base)} but the loaded model is "
        f"{BASE_LABELS.get(model_base, model_base)}; pick a {BASE_LABELS.get(model_base, model_base)} LoRA."
    )
