"""Write a diffusers SD pipeline as one original-layout (LDM) ``.safetensors`` checkpoint.

The inverse of what ``from_single_file`` reads: ``model.diffusion_model.*`` (UNet),
``first_stage_model.*`` (VAE) and ``cond_stage_model.transformer.*`` (CLIP text encoder).
Generic over the number of UNet/VAE levels and layers per block, so the tiny model converts
too; tests use it to prove single-file loading works offline, the benchmark to time it.
"""

from __future__ import annotations

import os
from pathlib import Path

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_VAE_ATTENTION = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def _resnet(rest: str, table=_RESNET) -> str:
    for ours, theirs in table:
        if rest.startswith(ours + "."):
            return theirs + rest[len(ours) :]
    return rest


def unet_key(key: str, config) -> str:
    """A diffusers UNet2DConditionModel key -> its key in the LDM UNet."""
    per = config.layers_per_block + 1
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for ours, theirs in fixed.items():
        if key.startswith(ours + "."):
            return theirs + key[len(ours) :]
    parts = key.split(".")
    if parts[0] == "down_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":
            return f"input_blocks.{(level + 1) * per}.0.op." + ".".join(parts[5:])
        index, rest = int(parts[3]), ".".join(parts[4:])
        block = 1 + level * per + index
        return f"input_blocks.{block}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{block}.1.{rest}"
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * index}.{_resnet(rest)}" if kind == "resnets" else f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        level, kind = int(parts[1]), parts[2]
        has_attention = "CrossAttn" in config.up_block_types[level]
        if kind == "upsamplers":
            return f"output_blocks.{level * per + per - 1}.{2 if has_attention else 1}." + ".".join(parts[4:])
        index, rest = int(parts[3]), ".".join(parts[4:])
        block = level * per + index
        return f"output_blocks.{block}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{block}.1.{rest}"
    raise KeyError(f"No LDM name for UNet key {key}")


def vae_key(key: str, config) -> str:
    levels = len(config.block_out_channels)
    vae_resnet = (("conv_shortcut", "nin_shortcut"),)
    parts = key.split(".")
    side = parts[0]
    if parts[1] in ("conv_in", "conv_out") or side in ("quant_conv", "post_quant_conv"):
        return key
    if parts[1] == "conv_norm_out":
        return f"{side}.norm_out." + ".".join(parts[2:])
    if parts[1] == "mid_block":
        kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "resnets":
            return f"{side}.mid.block_{index + 1}.{_resnet(rest, vae_resnet)}"
        return f"{side}.mid.attn_1.{_resnet(rest, _VAE_ATTENTION)}"
    if parts[1] in ("down_blocks", "up_blocks"):
        level = int(parts[2])
        if parts[1] == "up_blocks":
            level = levels - 1 - level
        name = "down" if parts[1] == "down_blocks" else "up"
        if parts[3] == "resnets":
            return f"{side}.{name}.{level}.block.{parts[4]}.{_resnet('.'.join(parts[5:]), vae_resnet)}"
        sampler = "downsample" if parts[3] == "downsamplers" else "upsample"
        return f"{side}.{name}.{level}.{sampler}." + ".".join(parts[5:])
    raise KeyError(f"No LDM name for VAE key {key}")


def checkpoint_write(pipe, path: Path) -> Path:
    """Save ``pipe`` (unet, vae, text_encoder) as a single LDM-layout safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    for key, value in pipe.unet.state_dict().items():
        tensors["model.diffusion_model." + unet_key(key, pipe.unet.config)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_key(key, pipe.vae.config)
        if ".mid.attn_1." in name and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's VAE attention uses 1x1 convolutions
        tensors["first_stage_model." + name] = value
    for key, value in pipe.text_encoder.state_dict().items():
        # transformers 5 drops the "text_model." level that the original layout has.
        key = key if key.startswith("text_model.") else "text_model." + key
        tensors["cond_stage_model.transformer." + key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path))
    os.chmod(path, 0o644)
    return path
