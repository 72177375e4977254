"""Which base model the engine loads, described without importing torch.

The model is named by a string (``IMAGINEER_MODEL``, read by ``generation.hardware``): a local
diffusers folder, a single ``.safetensors`` checkpoint or a Hugging Face repo id (read from the
local cache only). Empty: the built-in tiny model in ``tiny_dir``. No Django here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from generation.engine.lora_files import BASE_BY_CROSS_ATTENTION, BASE_LABELS, LoraFileError, safetensors_header

# The SD1.5 configs and tokenizer (no weights) shipped in data/: single files load offline with it.
SD15_CONFIG_DIR = Path(__file__).resolve().parents[2] / "data" / "sd15-config"
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}
# Tensors only an SDXL single-file checkpoint has: its second text encoder (OpenCLIP bigG) and
# the added size/crop conditioning of its UNet.
_SDXL_CHECKPOINT_MARKERS = ("conditioner.embedders.1.", "model.diffusion_model.label_emb.")
NOISE_NOTE = "The built-in tiny model has random weights: it makes noise, not pictures. Set IMAGINEER_MODEL."


class ModelSourceError(ValueError):
    """IMAGINEER_MODEL names something the engine will not load; the message says why."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "tiny" | "folder" | "single_file" | "hub"
    location: str  # a path or a repo id
    model_id: str  # what pages, the API and the PNG metadata call it
    # Config folder for a single file; default: the SD1.5 one in data/ (configs + tokenizer, no weights).
    single_file_config: str = ""

    @property
    def is_noise(self) -> bool:
        return self.kind == "tiny"

    @property
    def config_dir(self) -> Path | None:
        """The folder holding unet/config.json, when we can find it without the network."""
        if self.kind in ("tiny", "folder"):
            return Path(self.location)
        if self.kind == "single_file":
            return Path(self.single_file_config or SD15_CONFIG_DIR)
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(self.location, "unet/config.json")
        except Exception:
            return None
        return Path(cached).parent.parent if isinstance(cached, str) else None


def model_source(model: str, *, tiny_dir: Path | str) -> ModelSource:
    """What ``model`` names; empty: the built-in tiny model in ``tiny_dir``."""
    raw = model.strip()
    if not raw:
        folder = Path(tiny_dir)
        return ModelSource(kind="tiny", location=str(folder), model_id="imagineer/tiny-sd15-random")
    path = Path(raw).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelSourceError(
            f"IMAGINEER_MODEL={raw} is a pickle checkpoint ({path.suffix}). Pickle files can run arbitrary code "
            "when loaded, so the engine refuses them; convert it to .safetensors."
        )
    if path.suffix.lower() == ".safetensors":
        if not path.is_file():
            raise ModelSourceError(f"IMAGINEER_MODEL={raw}: no such file.")
        stat = path.stat()
        if _single_file_is_sdxl(str(path.resolve()), stat.st_mtime_ns, stat.st_size):
            raise ModelSourceError(
                f"IMAGINEER_MODEL={raw} is an SDXL checkpoint. Imagineer generates with Stable Diffusion 1.x "
                "(SD1.5 config, 768-wide text embeddings, SD1.5 LoRAs); set IMAGINEER_MODEL to an SD 1.x checkpoint."
            )
        return ModelSource(kind="single_file", location=str(path.resolve()), model_id=path.stem)
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise ModelSourceError(f"IMAGINEER_MODEL={raw} is a folder without model_index.json (not diffusers).")
        return ModelSource(kind="folder", location=str(path.resolve()), model_id=path.name)
    if raw.startswith(("/", ".", "~")):
        raise ModelSourceError(f"IMAGINEER_MODEL={raw}: no such file or folder.")
    return ModelSource(kind="hub", location=raw, model_id=raw)


@lru_cache(maxsize=8)
def _single_file_is_sdxl(path: str, mtime_ns: int, size: int) -> bool:
    """From the tensor names in the header alone (no weights read); cached per file version."""
    try:
        tensors, _metadata, _data_start = safetensors_header(Path(path))
    except LoraFileError as exc:
        raise ModelSourceError(f"IMAGINEER_MODEL={path}: {exc}") from None
    return any(name.startswith(_SDXL_CHECKPOINT_MARKERS) for name in tensors)


@lru_cache(maxsize=8)
def _base_of_config(config_dir: str) -> str:
    try:
        config = json.loads((Path(config_dir) / "unet" / "config.json").read_text())
    except (OSError, ValueError):
        return "unknown"
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    return BASE_BY_CROSS_ATTENTION.get(int(config.get("cross_attention_dim") or 0), "unknown")


def model_base(source: ModelSource) -> str:
    """``sd15``, ``sd2``, ``sdxl`` or ``unknown``: from the UNet config, no weights read."""
    config_dir = source.config_dir
    return _base_of_config(str(config_dir)) if config_dir else "unknown"


def model_base_label(base: str) -> str:
    return BASE_LABELS.get(base, base)
