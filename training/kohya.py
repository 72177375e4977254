"""kohya-ss sd-scripts' LoRA file format: key names, alpha tensors, ``ss_*`` and ``modelspec.*`` metadata.

What A1111, ComfyUI and kohya's own ``create_network_from_weights`` read:

- one module per trained layer, named ``lora_unet_`` (UNet) or ``lora_te_`` (CLIP text
  encoder) + the layer's diffusers module path with ``.`` turned into ``_``:
  ``lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q``;
- per module ``<name>.lora_down.weight`` (rank x in, PEFT's ``lora_A``),
  ``<name>.lora_up.weight`` (out x rank, PEFT's ``lora_B``) and ``<name>.alpha`` (a 0-d
  tensor): the update is ``up @ down * alpha / rank``, PEFT's ``lora_alpha / r`` scaling;
- metadata whose every value is a string: the ``ss_*`` keys sd-scripts' train_network.py
  writes, ``sshs_model_hash`` / ``sshs_legacy_hash`` (precomputed hashes A1111 and the
  additional-networks extension use) and the ModelSpec ``modelspec.*`` keys.

Pure functions over tensors and dicts; no Django.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

UNET_PREFIX = "lora_unet_"
TEXT_ENCODER_PREFIX = "lora_te_"
_PEFT_SUFFIXES = {".lora_A.weight": ".lora_down.weight", ".lora_B.weight": ".lora_up.weight"}
MODELSPEC_VERSION = "1.0.1"
ARCHITECTURE_SD1_LORA = "stable-diffusion-v1/lora"
IMPLEMENTATION = "diffusers"  # sd-scripts' value for an SD1.x LoRA (trained on the diffusers UNet)
IMAGINEER_VERSION = "imagineer/0.1.0"


def kohya_module_name(module_path: str, *, text_encoder: bool = False) -> str:
    """``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`` -> ``lora_unet_down_blocks_0_..._to_q``."""
    return (TEXT_ENCODER_PREFIX if text_encoder else UNET_PREFIX) + module_path.replace(".", "_")


def _split_peft_key(key: str) -> tuple[str, str]:
    for suffix, kohya_suffix in _PEFT_SUFFIXES.items():
        if key.endswith(suffix):
            return key[: -len(suffix)], kohya_suffix
    raise ValueError(f"{key} is not a PEFT LoRA weight (lora_A/lora_B).")


def peft_to_kohya(
    unet_state: Mapping[str, torch.Tensor],
    *,
    alpha: float,
    text_encoder_state: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """PEFT adapter weights (``get_peft_model_state_dict``) as kohya tensors, with one ``.alpha`` per module."""
    tensors: dict[str, torch.Tensor] = {}
    for state, text_encoder in ((unet_state, False), (text_encoder_state or {}, True)):
        for key, tensor in state.items():
            module, suffix = _split_peft_key(key)
            name = kohya_module_name(module, text_encoder=text_encoder)
            tensors[name + suffix] = tensor.detach().to("cpu", dtype).contiguous()
            tensors[name + ".alpha"] = torch.tensor(float(alpha), dtype=torch.float32)
    return tensors


def kohya_to_peft(tensors: Mapping[str, torch.Tensor], module_paths: Iterable[str]) -> dict[str, torch.Tensor]:
    """The inverse for one model (``lora_unet_`` keys and ``module_paths`` from ``unet.named_modules()``).

    kohya's names lose the dots, so they are matched against the model's own module paths.
    """
    by_name = {kohya_module_name(path): path for path in module_paths}
    state = {}
    for key, tensor in tensors.items():
        if not key.startswith(UNET_PREFIX) or key.endswith(".alpha"):
            continue
        name, _, suffix = key.partition(".")
        if name not in by_name:
            raise ValueError(f"{key} names no layer of this model.")
        peft_suffix = {"lora_down.weight": "lora_A.weight", "lora_up.weight": "lora_B.weight"}.get(suffix)
        if peft_suffix is None:
            raise ValueError(f"{key} is not a kohya LoRA weight (lora_down/lora_up/alpha).")
        state[f"{by_name[name]}.{peft_suffix}"] = tensor
    return state


def safetensors_hashes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) as sd-scripts precomputes them.

    The model hash is the sha256 of the serialized tensor data (what follows the header), so it
    equals A1111's hash of the saved file whatever else the metadata holds. The legacy hash is
    the first 8 hex of the sha256 of 64 KiB at 1 MiB into the file serialized with the ``ss_``
    metadata only (empty past the end of a small file, as in sd-scripts).
    """
    from safetensors.torch import save

    data = save(dict(tensors), {key: value for key, value in metadata.items() if key.startswith("ss_")})
    header_length = int.from_bytes(data[:8], "little")
    model_hash = hashlib.sha256(data[8 + header_length :]).hexdigest()
    stream = io.BytesIO(data)
    stream.seek(0x100000)
    legacy_hash = hashlib.sha256(stream.read(0x10000)).hexdigest()[:8]
    return model_hash, legacy_hash


def bucket_info(sizes: Iterable[tuple[int, int]], buckets: Iterable[tuple[int, int]]) -> dict[str, Any]:
    """sd-scripts' ``ss_bucket_info``: images per (width, height) bucket and the mean aspect-ratio error.

    ``sizes`` are the images' own sizes, ``buckets`` the bucket each was trained in (same order).
    """
    counts: dict[tuple[int, int], int] = {}
    errors = []
    for (width, height), bucket in zip(sizes, buckets, strict=True):
        counts[bucket] = counts.get(bucket, 0) + 1
        errors.append(abs(width / height - bucket[0] / bucket[1]))
    return {
        "buckets": {
            str(index): {"resolution": list(resolution), "count": count}
            for index, (resolution, count) in enumerate(sorted(counts.items()))
        },
        "mean_img_ar_error": sum(errors) / len(errors) if errors else 0.0,
    }


def epochs(*, images: int, batch_size: int, gradient_accumulation: int, max_steps: int) -> tuple[int, int]:
    """(batches per epoch, epochs) for a step-based run: an epoch is one pass over the images."""
    batches = max(1, math.ceil(images / batch_size))
    steps_per_epoch = max(1, math.ceil(batches / gradient_accumulation))
    return batches, max(1, math.ceil(max_steps / steps_per_epoch))


def modelspec_metadata(*, title: str, resolution: int, started_at: float, trigger_phrase: str = "") -> dict[str, str]:
    """The ModelSpec keys sd-scripts writes for an SD1.x LoRA."""
    metadata = {
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": ARCHITECTURE_SD1_LORA,
        "modelspec.implementation": IMPLEMENTATION,
        "modelspec.title": title,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.date": datetime.datetime.fromtimestamp(int(started_at)).isoformat(),
        "modelspec.prediction_type": "epsilon",
        "modelspec.implementation_version": IMAGINEER_VERSION,
    }
    if trigger_phrase:
        metadata["modelspec.trigger_phrase"] = trigger_phrase
    return metadata


def as_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """safetensors metadata is str -> str; sd-scripts writes every value with ``str()``."""
    strings = {}
    for key, value in metadata.items():
        strings[key] = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict) else str(value)
    return strings
