"""Read a LoRA file's tensor names and shapes from its safetensors header, without torch.

The base architecture is told apart by what the tensors are, not by file size:
- SDXL: a second text encoder (``lora_te2_``/``text_encoder_2``) or cross-attention over
  2048-wide embeddings;
- SD2.x: cross-attention over 1024-wide embeddings (OpenCLIP ViT-H);
- SD1.x: cross-attention over 768-wide embeddings (CLIP ViT-L).
The cross-attention width is the input width of a LoRA ``down``/``A`` matrix of an ``attn2``
``to_k``/``to_v`` projection, the layer that reads the text embeddings.

Files come from uploads, so the header is hostile input: every field is checked against the
safetensors format (dtypes, shapes of non-negative integers, data offsets inside the file
that match the shape) before anything is read from it, and every refusal is a
:class:`LoraFileError` whose message names what is wrong. Nothing else may escape: rows
built from what this returns (rank, alpha) must always be storable and serialisable.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADER_LIMIT = 100 * 1024 * 1024
# One tensor dimension; larger ones are not real files (and overflow integer columns).
MAX_DIMENSION = 2**31 - 1
# LoRA ranks in the wild are 1 to 1024.
MAX_RANK = 4096
# Bytes per element of the safetensors dtypes a LoRA may hold.
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}
BASE_BY_CROSS_ATTENTION = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
BASE_LABELS = {"sd15": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "unknown": "unknown"}
# kohya/LyCORIS LoRA and LoCon, PEFT, and the older diffusers layouts (``to_q_lora.down``,
# ``lora_linear_layer.down``): every convention diffusers converts on loading.
_DOWN = re.compile(r"(lora_down|lora_A|lora\.down|lora_linear_layer\.down)(\.[^.]+)?\.weight$")
_CROSS_KV = re.compile(r"attn2[._](processor[._])?to_[kv]")
_SDXL_MARKERS = ("lora_te2_", "text_encoder_2.", "te2.", "add_embedding", "label_emb")
# The text encoder's own projections: their input width is CLIP ViT-L's 768 (SD 1.x) or
# OpenCLIP ViT-H's 1024 (SD 2.x). SDXL's are lora_te1_/lora_te2_, caught as SDXL before.
_TEXT_ENCODER = re.compile(r"^(lora_te_|text_encoder\.|te\.).*(self_attn[._](q|k|v)_proj|mlp[._]fc1)")
BASE_BY_TEXT_WIDTH = {768: "sd15", 1024: "sd2"}
# Other model families: their LoRAs cannot be applied to an SD 1.x/2.x pipeline.
_FOREIGN_MARKERS = {
    "FLUX.1": ("double_blocks", "single_blocks", "single_transformer_blocks"),
    "Stable Diffusion 3": ("joint_blocks", "context_block"),
}
# LyCORIS and other adapter types by the names of their tensors (A1111's network_*.py and
# ComfyUI's weight adapters read them; diffusers' Stable Diffusion loader does not).
_ADAPTER_KINDS = (
    (re.compile(r"\.hada_(w1_a|w1_b|w2_a|w2_b|t1|t2)$"), "a LyCORIS LoHa (Hadamard product) file"),
    (re.compile(r"\.lokr_(w1|w2|w1_a|w1_b|w2_a|w2_b|t2)$"), "a LyCORIS LoKr (Kronecker product) file"),
    (re.compile(r"\.on_input$"), "a LyCORIS (IA)\u00b3 file"),
    (re.compile(r"^(lora_|lycoris_).*\.(a1|a2|b1|b2)\.weight$"), "a LyCORIS GLoRA file"),
    (re.compile(r"\.(oft_blocks|oft_diag|boft_blocks|oft_R\.weight)$"), "an OFT/BOFT (orthogonal fine-tuning) file"),
    (re.compile(r"\.lora_mid\.weight$"), "a LoCon with Tucker decomposition (lora_mid)"),
    (re.compile(r"^(lora_|lycoris_).*\.(diff|diff_b)$"), "a LyCORIS full-difference (Full / DiffLoRA) file"),
)
# Files that are not adapters at all, by a name only they have.
_OTHER_FILES = (
    (("emb_params", "string_to_param", "clip_l", "clip_g"), "a textual-inversion embedding, not a LoRA"),
    (
        ("model.diffusion_model.", "cond_stage_model.", "conditioner.embedders."),
        "a full Stable Diffusion checkpoint, not a LoRA (name it in IMAGINEER_MODEL to generate with it)",
    ),
    (("control_model.", "controlnet_cond_embedding", "input_hint_block"), "a ControlNet model, not a LoRA"),
    (("first_stage_model.", "post_quant_conv", "decoder.up.", "decoder.up_blocks."), "a VAE, not a LoRA"),
)
# What kohya's ss_base_model_version and the modelspec architecture say, when tensors cannot tell.
_BASE_BY_KOHYA_VERSION = {"sd_v1": "sd15", "sd_v2": "sd2"}
_NAME_SHOWN = 80


class LoraFileError(ValueError):
    """The file is not a LoRA we can read; the message says why."""


@dataclass(frozen=True)
class Tensor:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets into the data buffer, which starts after the header
    end: int


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


def _shown(name: str) -> str:
    return repr(name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "...")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor(file: str, name: str, entry: Any, data_size: int) -> Tensor:
    where = f"{file}: tensor {_shown(name)}"
    if not isinstance(entry, dict):
        raise LoraFileError(f"{where} is described by {type(entry).__name__}, not an object.")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise LoraFileError(f"{where} has an unknown dtype {str(dtype)[:20]!r}.")
    if "shape" not in entry:
        raise LoraFileError(f"{where} has no shape.")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_int(dim) for dim in shape):
        raise LoraFileError(f"{where} has the shape {str(shape)[:40]}; a shape is a list of whole numbers.")
    if any(not 0 <= dim <= MAX_DIMENSION for dim in shape):
        raise LoraFileError(f"{where} has the shape {str(shape)[:60]}; dimensions are 0 to {MAX_DIMENSION}.")
    offsets = entry.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(offset) for offset in offsets)):
        raise LoraFileError(f"{where} has no valid data_offsets (two whole numbers).")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise LoraFileError(f"{where} has data_offsets {offsets} outside the file's {data_size:,} bytes of data.")
    needed = math.prod(shape) * DTYPE_BYTES[dtype]
    if needed != end - begin:
        raise LoraFileError(
            f"{where}: a {dtype} tensor of shape {shape} needs {needed:,} bytes, but its data_offsets hold {end - begin:,}."
        )
    return Tensor(dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def safetensors_header(path: Path, *, name: str | None = None) -> tuple[dict[str, Tensor], dict[str, str], int]:
    """The checked tensor table, the ``__metadata__`` and where the data buffer starts in the file.

    ``name`` is the file's name in messages (and for its suffix) when ``path`` is a temporary file.
    """
    shown = Path(name or path.name)
    suffix = shown.suffix.lower()
    if suffix != ".safetensors":
        if suffix in {".ckpt", ".pt", ".pth", ".bin", ".pkl"}:
            raise LoraFileError(
                f"{shown.name} is a pickle file ({shown.suffix}); pickles can run code when loaded, so only "
                ".safetensors files are accepted. Convert it to .safetensors first."
            )
        raise LoraFileError(f"{shown.name} is not a .safetensors file; only .safetensors LoRAs are accepted.")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            raw_length = handle.read(8)
            if len(raw_length) != 8:
                raise LoraFileError(f"{shown.name} is too short to be a safetensors file.")
            (length,) = struct.unpack("<Q", raw_length)
            if not 2 <= length <= min(HEADER_LIMIT, size - 8):
                raise LoraFileError(
                    f"{shown.name} has no valid safetensors header (header length {length:,} in a {size:,}-byte file)."
                )
            header = json.loads(handle.read(length).decode("utf-8"))
    except LoraFileError:
        raise
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise LoraFileError(f"{shown.name} is not a readable safetensors file: {str(exc)[:200]}.") from None
    if not isinstance(header, dict):
        raise LoraFileError(f"{shown.name} has a malformed safetensors header (not a JSON object).")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise LoraFileError(f"{shown.name}: __metadata__ must be an object whose values are strings.")
    data_start = 8 + length
    tensors = {name: _tensor(shown.name, name, entry, size - data_start) for name, entry in header.items()}
    return tensors, metadata, data_start


def lora_inspect(path: Path, *, name: str | None = None) -> LoraInfo:
    """Base, rank and alpha of a LoRA file; ``name`` as in :func:`safetensors_header`.

    A file that is another kind of adapter (LoHa, LoKr, ...), another kind of model
    (embedding, checkpoint, ControlNet, VAE) or a LoRA for another model family (FLUX.1, SD3)
    is refused with a message that says which. The base comes from the tensors: the
    cross-attention width, else the text encoder's width; only when they cannot tell (a LoRA
    of convolution layers only) from kohya's ``ss_base_model_version`` / ``ss_v2`` or the
    ``modelspec.architecture`` metadata.
    """
    tensors, metadata, data_start = safetensors_header(path, name=name)
    file = name or path.name
    if not tensors:
        raise LoraFileError(f"{file} holds no tensors.")
    _kind_check(file, tensors, metadata)
    downs = {name: tensor.shape for name, tensor in tensors.items() if _DOWN.search(name)}
    if not downs:
        raise LoraFileError(
            f"{file} has no LoRA down/A matrices: it is not a LoRA (a full checkpoint or an embedding?)."
        )
    first, shape = next(iter(downs.items()))
    if len(shape) < 2:
        raise LoraFileError(f"{file}: the down matrix {_shown(first)} has the shape {list(shape)}, not a matrix.")
    rank = shape[0]
    if not 1 <= rank <= MAX_RANK:
        raise LoraFileError(f"{file}: the down matrix {_shown(first)} gives rank {rank}; a rank is 1 to {MAX_RANK}.")
    cross = next(
        (
            shape[1]
            for down, shape in downs.items()
            if _CROSS_KV.search(down) and ("unet" in down or "lora_unet" in down) and len(shape) >= 2
        ),
        None,
    )
    text_width = next(
        (shape[1] for down, shape in downs.items() if _TEXT_ENCODER.search(down) and len(shape) >= 2), None
    )
    if any(marker in tensor for tensor in tensors for marker in _SDXL_MARKERS) or cross == 2048:
        base = "sdxl"
    elif cross:
        base = BASE_BY_CROSS_ATTENTION.get(cross, "unknown")
    elif text_width in BASE_BY_TEXT_WIDTH:
        base = BASE_BY_TEXT_WIDTH[text_width]
    else:
        base = metadata_base(metadata)
    alpha = _alpha(path, file, tensors, metadata, data_start)
    return LoraInfo(base=base, rank=rank, alpha=alpha, cross_attention_dim=cross, tensor_count=len(tensors))


def metadata_base(metadata: dict[str, str]) -> str:
    """The base a LoRA's training metadata names (kohya's keys, then modelspec), or "unknown"."""
    version = metadata.get("ss_base_model_version", "").strip().lower()
    if version.startswith("sdxl"):
        return "sdxl"
    if version in _BASE_BY_KOHYA_VERSION or version.startswith("sd_v2"):
        return _BASE_BY_KOHYA_VERSION.get(version, "sd2")
    architecture = metadata.get("modelspec.architecture", "").strip().lower()
    if architecture.startswith("stable-diffusion-xl"):
        return "sdxl"
    if architecture.startswith("stable-diffusion-v1"):
        return "sd15"
    if architecture.startswith("stable-diffusion-v2"):
        return "sd2"
    v2 = metadata.get("ss_v2", "").strip()
    if v2 in ("True", "False") and "ss_network_module" in metadata:
        return "sd2" if v2 == "True" else "sd15"
    return "unknown"


def _foreign_family(tensors: dict[str, Tensor], metadata: dict[str, str]) -> str | None:
    for family, markers in _FOREIGN_MARKERS.items():
        if any(marker in tensor for tensor in tensors for marker in markers):
            return family
    version = metadata.get("ss_base_model_version", "").lower()
    architecture = metadata.get("modelspec.architecture", "").lower()
    if version.startswith("flux") or architecture.startswith("flux"):
        return "FLUX.1"
    if version.startswith("sd3") or architecture.startswith("stable-diffusion-3"):
        return "Stable Diffusion 3"
    return None


def _kind_check(file: str, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    """Refuse, by what it is, a file that is not a LoRA this engine can apply."""
    for pattern, what in _ADAPTER_KINDS:
        layers = {tensor.rsplit(".", 2)[0] for tensor in tensors if pattern.search(tensor)}
        if layers:
            raise LoraFileError(
                f"{file} is {what} ({len(layers)} layer{'s' if len(layers) != 1 else ''}): not a LoRA/LoCon, and "
                "diffusers cannot apply it to a Stable Diffusion model, so it is not supported. Use a LoRA or "
                "LoCon version of it (or merge it into a checkpoint with LyCORIS's tools)."
            )
    family = _foreign_family(tensors, metadata)
    if family:
        raise LoraFileError(
            f"{file} is a LoRA for {family}; Imagineer generates with Stable Diffusion 1.x/2.x models only."
        )
    if not any(_DOWN.search(tensor) for tensor in tensors):
        for markers, what in _OTHER_FILES:
            if any(
                tensor == marker or tensor.startswith(marker) or f".{marker}" in tensor
                for tensor in tensors
                for marker in markers
            ):
                raise LoraFileError(f"{file} is {what}.")


def _alpha_checked(value: Any, where: str) -> float:
    """A usable alpha (finite, not negative) from a metadata value."""
    try:
        alpha = float(value)
    except (TypeError, ValueError, OverflowError):
        raise LoraFileError(f"{where} is {str(value)[:40]!r}, not a number.") from None
    if not math.isfinite(alpha) or alpha < 0:
        raise LoraFileError(f"{where} is {str(value)[:40]!r}; alpha must be a finite number, 0 or more.")
    return alpha


def _alpha(
    path: Path, file: str, tensors: dict[str, Tensor], metadata: dict[str, str], data_start: int
) -> float | None:
    """Kohya files keep alpha in ``.alpha`` tensors or ``ss_network_alpha``; diffusers in ``lora_adapter_metadata``."""
    if "ss_network_alpha" in metadata:
        raw = metadata["ss_network_alpha"].strip()
        return None if raw in {"", "None"} else _alpha_checked(raw, f"{file}: ss_network_alpha")
    adapter_json = metadata.get("lora_adapter_metadata") or metadata.get("unet_lora_adapter_metadata")
    if adapter_json:
        try:
            adapter = json.loads(adapter_json)
        except (ValueError, RecursionError):
            raise LoraFileError(f"{file}: lora_adapter_metadata is not valid JSON.") from None
        if isinstance(adapter, dict) and isinstance(adapter.get("unet"), dict):
            adapter = adapter["unet"]
        if isinstance(adapter, dict):
            for key in ("lora_alpha", "unet.lora_alpha"):
                if key in adapter:
                    return _alpha_checked(adapter[key], f"{file}: lora_adapter_metadata's {key}")
    name = next((name for name in tensors if name.endswith(".alpha")), None)
    if name is None:
        return None
    return _alpha_checked(_scalar_read(path, file, name, tensors[name], data_start), f"{file}: tensor {_shown(name)}")


_SCALAR_FORMATS = {"F16": "<e", "F32": "<f", "F64": "<d", "I8": "<b", "U8": "<B", "I16": "<h", "I32": "<i", "I64": "<q"}


def _scalar_read(path: Path, file: str, name: str, tensor: Tensor, data_start: int) -> float:
    """The one value of a scalar tensor, read from its (already bounds-checked) bytes."""
    if math.prod(tensor.shape) != 1 or (tensor.dtype not in _SCALAR_FORMATS and tensor.dtype != "BF16"):
        raise LoraFileError(
            f"{file}: tensor {_shown(name)} ({tensor.dtype}, shape {list(tensor.shape)}) is not one number."
        )
    try:
        with path.open("rb") as handle:
            handle.seek(data_start + tensor.begin)
            raw = handle.read(tensor.end - tensor.begin)
    except OSError as exc:
        raise LoraFileError(f"{file} could not be read: {exc}.") from None
    try:
        if tensor.dtype == "BF16":  # the top half of a float32
            return struct.unpack("<f", b"\x00\x00" + raw)[0]
        return struct.unpack(_SCALAR_FORMATS[tensor.dtype], raw)[0]
    except struct.error:  # the file shrank since its size was checked
        raise LoraFileError(f"{file}: tensor {_shown(name)} is cut short.") from None


def lora_fit_error(*, lora_name: str, lora_base: str, model_base: str) -> str | None:
    """Why a LoRA of ``lora_base`` cannot be used with a model of ``model_base``, or None when it can."""
    if lora_base in ("unknown", "") or model_base in ("unknown", "") or lora_base == model_base:
        return None
    return (
        f"LoRA {lora_name!r} is made for {BASE_LABELS.get(lora_base, lora_base)} but the loaded model is "
        f"{BASE_LABELS.get(model_base, model_base)}; pick a {BASE_LABELS.get(model_base, model_base)} LoRA."
    )
