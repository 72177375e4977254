"""Make LoRA files for a loaded pipeline (tests, the benchmark): random, seeded, non-zero.

A fresh PEFT LoRA has B = 0 and changes nothing; these fill B too so that stacking one
visibly changes the output. Saved in diffusers' format with adapter metadata so that an
alpha different from the rank survives the round trip.
"""

from __future__ import annotations

import os
from pathlib import Path

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def lora_make_random(pipe, path: Path, *, rank: int = 4, alpha: float | None = None, seed: int = 0, scale: float = 0.5):
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    alpha = float(alpha if alpha is not None else rank)
    unet = pipe.unet
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=TARGETS, init_lora_weights=False)
    adapter = f"_make_{os.getpid()}_{seed}"
    unet.add_adapter(config, adapter_name=adapter)
    try:
        generator = torch.Generator().manual_seed(seed)
        state = get_peft_model_state_dict(unet, adapter_name=adapter)
        state = {
            key: (torch.randn(value.shape, generator=generator) * scale / value.shape[-1] ** 0.5).to(torch.float32)
            for key, value in state.items()
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        StableDiffusionPipeline.save_lora_weights(
            save_directory=str(path.parent),
            unet_lora_layers=state,
            weight_name=path.name,
            unet_lora_adapter_metadata=config.to_dict(),
            safe_serialization=True,
        )
    finally:
        unet.delete_adapters(adapter)
    # safetensors writes 0600; the web process (maybe another user) must read it.
    os.chmod(path, 0o644)
    return path


def lora_make_sdxl_shaped(path: Path, *, rank: int = 4) -> Path:
    """A tiny file with SDXL LoRA tensor names and shapes (kohya layout): enough to be detected and refused."""
    import torch
    from safetensors.torch import save_file

    tensors = {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(rank, 2048),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(640, rank),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.alpha": torch.tensor(float(rank)),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(rank, 1280),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(1280, rank),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    os.chmod(path, 0o644)
    return path
