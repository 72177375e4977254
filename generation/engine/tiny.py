"""The built-in tiny SD1.5-shaped pipeline with random weights.

It has SD1.5's interfaces (4 latent channels, VAE scale factor 8, 768-wide text embeddings,
cross-attention with LoRA-able ``to_q/to_k/to_v/to_out.0``, the real CLIP tokenizer's merges,
truncated) with a few channels per layer, so every code path of the engine (batching, LoRAs,
long prompts, schedulers, single-file loading) runs in seconds on a CPU. It makes noise: the
weights are random. Built deterministically from a fixed seed, so every machine builds the
same model.

Its shape is chosen for speed at real sizes (a 512x720 card is a 64x90 latent): attention
only at 1/8 of the latent resolution, 8 channels at full latent resolution, no attention in
the VAE. Version 1 had attention at full latent resolution and took ~5 s per step at 512x720
(``bench/tiny_model.py`` prints both side by side). The version is part of the marker file,
so a folder built by an older version is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generation.engine.source import SD15_CONFIG_DIR
from generation.engine.tokenizer_files import clip_merges_read, clip_tokenizer_write

TINY_SEED = 1234
TINY_MERGES = 2000
MARKER = "imagineer-tiny.json"
TINY_VERSION = 2


@dataclass(frozen=True)
class TinyShape:
    """The layer layout of the tiny UNet and VAE (everything else is SD1.5's)."""

    unet_channels: tuple[int, ...] = (8, 16, 32, 32)
    unet_down: tuple[str, ...] = ("DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D")
    unet_up: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D")
    unet_layers_per_block: int = 1
    unet_norm_groups: int = 8
    vae_channels: tuple[int, int, int, int] = (8, 8, 8, 16)
    vae_norm_groups: int = 8
    vae_mid_attention: bool = False


TINY_SHAPE = TinyShape()


def tiny_model_ready(folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text()).get("version") == TINY_VERSION
    except ValueError:
        return False


def tiny_model_build(folder: Path, *, force: bool = False, shape: TinyShape = TINY_SHAPE) -> Path:
    """Build the tiny pipeline into ``folder`` (IMAGINEER_TINY_MODEL_DIR for the app); idempotent.

    ``shape`` other than the default is for benchmarks (the marker then says it is not ours).
    """
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    if shape == TINY_SHAPE and tiny_model_ready(folder) and not force:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed, so a half-built model is never picked up.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        merges = clip_merges_read(SD15_CONFIG_DIR / "tokenizer" / "merges.txt")
        clip_tokenizer_write(merges[:TINY_MERGES], staging / "tokenizer")
        tokenizer = CLIPTokenizer.from_pretrained(staging / "tokenizer")

        torch.manual_seed(TINY_SEED)
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            block_out_channels=shape.unet_channels,
            layers_per_block=shape.unet_layers_per_block,
            down_block_types=shape.unet_down,
            up_block_types=shape.unet_up,
            cross_attention_dim=768,
            attention_head_dim=8,
            norm_num_groups=shape.unet_norm_groups,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=shape.vae_channels,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            norm_num_groups=shape.vae_norm_groups,
            sample_size=64,
            mid_block_add_attention=shape.vae_mid_attention,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=768,
                intermediate_size=128,
                num_hidden_layers=1,
                num_attention_heads=12,
                max_position_embeddings=77,
                projection_dim=768,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        scheduler = DPMSolverMultistepScheduler.from_pretrained(SD15_CONFIG_DIR, subfolder="scheduler")
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        # Half precision on disk keeps the folder small; it loads as float32 on a CPU.
        pipe.to(torch.float16)
        pipe.save_pretrained(staging, safe_serialization=True)
        (staging / MARKER).write_text(
            json.dumps(
                {
                    "version": TINY_VERSION if shape == TINY_SHAPE else f"custom {shape}",
                    "seed": TINY_SEED,
                    "note": "random weights: makes noise",
                }
            )
            + "\n"
        )
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
