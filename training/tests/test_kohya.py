"""Trained LoRAs in kohya's format, as A1111, ComfyUI, kohya's sd-scripts and diffusers read them.

The key maps below are written here from each tool's documented convention, not imported
from our code:
- A1111 (``extensions-builtin/Lora/networks.py: convert_diffusers_name_to_compvis``) turns
  ``lora_unet_{down,mid,up}_block(s)_N_attentions_M_<rest>`` into the LDM UNet's module name
  (``diffusion_model_input_blocks_{1+3N+M}_1_<rest>`` ...) and looks it up among the model's
  modules with ``.`` as ``_``; a key it cannot place is silently skipped.
- ComfyUI (``comfy/lora.py: model_lora_keys_unet``) accepts ``lora_unet_`` + a diffusers UNet
  weight's module path with ``.`` as ``_``.
- kohya (``networks/lora.py: create_network_from_weights``) builds one module per Linear inside
  each ``Transformer2DModel`` of the diffusers UNet, named ``lora_unet_`` + path with ``_``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors import safe_open
from safetensors.torch import load_file

from generation.engine.lora_files import lora_inspect
from generation.engine.runtime import BatchSettings, Engine, ImageRequest, LoraRef
from generation.engine.source import ModelSource
from training import kohya, trainer

SD15_CONFIG = Path(__file__).resolve().parents[2] / "data" / "sd15-config" / "unet" / "config.json"
ATTENTION_LINEARS = ("to_q", "to_k", "to_v", "to_out_0")


def a1111_compvis_name(key: str) -> str | None:
    """A1111's diffusers -> compvis conversion of a LoRA module name (attention blocks)."""
    if m := re.match(r"lora_unet_down_blocks_(\d+)_attentions_(\d+)_(.+)", key):
        return f"diffusion_model_input_blocks_{1 + int(m[1]) * 3 + int(m[2])}_1_{m[3]}"
    if m := re.match(r"lora_unet_mid_block_attentions_(\d+)_(.+)", key):
        return f"diffusion_model_middle_block_1_{m[2]}"
    if m := re.match(r"lora_unet_up_blocks_(\d+)_attentions_(\d+)_(.+)", key):
        return f"diffusion_model_output_blocks_{int(m[1]) * 3 + int(m[2])}_1_{m[3]}"
    return None


def sd15_ldm_attention_modules() -> set[str]:
    """SD1.5's LDM UNet attention projections, as A1111 names its modules ('.' -> '_')."""
    blocks = [f"input_blocks_{i}" for i in (1, 2, 4, 5, 7, 8)] + ["middle_block"]
    blocks += [f"output_blocks_{i}" for i in range(3, 12)]
    return {
        f"diffusion_model_{block}_1_transformer_blocks_0_{attn}_{linear}"
        for block in blocks
        for attn in ("attn1", "attn2")
        for linear in ATTENTION_LINEARS
    }


@pytest.fixture(scope="module")
def sd15_unet():
    """SD1.5's UNet (diffusers layout) with no weights: its module names are all we need."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():
        return UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG.parent))


def _peft_state(unet, rank: int = 4) -> dict[str, torch.Tensor]:
    """A PEFT state dict for our target modules (the trainer's), small random tensors."""
    state = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith((".to_q", ".to_k", ".to_v", ".to_out.0")):
            state[f"{name}.lora_A.weight"] = torch.randn(rank, 2)
            state[f"{name}.lora_B.weight"] = torch.randn(2, rank)
    return state


def test_key_names_map_onto_sd15_modules_as_a1111_comfyui_and_kohya_map_them(sd15_unet):
    tensors = kohya.peft_to_kohya(_peft_state(sd15_unet), alpha=8)
    modules = {key.split(".")[0] for key in tensors}
    assert len(modules) == 16 * 2 * 4 and all(key.startswith("lora_unet_") for key in modules)
    for module in modules:
        assert {f"{module}.lora_down.weight", f"{module}.lora_up.weight", f"{module}.alpha"} <= set(tensors)
        assert float(tensors[f"{module}.alpha"]) == 8.0 and tensors[f"{module}.alpha"].ndim == 0

    # A1111: every module lands on an SD1.5 LDM attention projection, all of them, none twice.
    compvis = [a1111_compvis_name(module) for module in modules]
    assert None not in compvis and set(compvis) == sd15_ldm_attention_modules() and len(set(compvis)) == len(modules)

    # ComfyUI: lora_unet_ + a diffusers weight's module path.
    comfy = {
        "lora_unet_" + key.removesuffix(".weight").replace(".", "_")
        for key, _ in sd15_unet.named_parameters()
        if key.endswith(".weight")
    }
    assert modules <= comfy

    # kohya: one module per Linear inside a Transformer2DModel.
    kohya_names = set()
    for name, module in sd15_unet.named_modules():
        if module.__class__.__name__ == "Transformer2DModel":
            for child_name, child in module.named_modules():
                if isinstance(child, torch.nn.Linear):
                    kohya_names.add(f"lora_unet.{name}.{child_name}".replace(".", "_"))
    assert modules <= kohya_names

    # Text-encoder layers as kohya names them: lora_te_text_model_encoder_layers_N_self_attn_q_proj.
    te = kohya.peft_to_kohya(
        {}, alpha=4, text_encoder_state={"text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.ones(2, 2)}
    )
    assert set(te) == {
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha",
    }
    # And back: the dots are recovered from the model's own module names.
    unet_only = {key: value for key, value in tensors.items() if not key.endswith(".alpha")}
    back = kohya.kohya_to_peft(unet_only, [name for name, _ in sd15_unet.named_modules()])
    assert set(back) == set(_peft_state(sd15_unet))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A LoRA trained on the tiny model for 2 steps with alpha 8, rank 4, in fp32 on the CPU."""
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("kohya")
    items = []
    for index, color in enumerate(("red", "blue", "green")):
        path = folder / f"{index}.png"
        PILImage.new("RGB", (64, 96) if index else (64, 64), color).save(path)
        items.append(trainer.TrainItem(path=path, caption=f"crdz, a {color} card"))
    config = trainer.TrainConfig(
        learning_rate=1e-2, rank=4, alpha=8.0, dropout=0.0, max_steps=2, save_every=2, resolution=64,
        batch_size=1, gradient_accumulation=1, seed=7, mixed_precision=True, sample_prompts=[],
        output_dir=folder / "out", metadata={"ss_output_name": "Card style", "modelspec.trigger_phrase": "crdz"},
    )  # fmt: skip
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    result = trainer.lora_train(
        pipeline=pipe, items=items, config=config, hooks=trainer.TrainHooks(), device=torch.device("cpu")
    )
    return result.last_checkpoint.path


def test_trained_file_is_kohya_format_with_alpha_and_kohyas_metadata(trained, tiny_model_dir):
    tensors = load_file(trained)
    assert tensors and all(key.startswith("lora_unet_") for key in tensors)
    modules = {key.split(".")[0] for key in tensors}
    for module in modules:
        assert tensors[f"{module}.lora_down.weight"].shape[0] == 4
        assert tensors[f"{module}.lora_up.weight"].shape[1] == 4
        assert float(tensors[f"{module}.alpha"]) == 8.0
    # Every module is a layer of the model it was trained on, named as kohya names it.
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    paths = {name for name, _ in unet.named_modules()}
    assert modules <= {kohya.kohya_module_name(path) for path in paths}

    with safe_open(str(trained), framework="pt") as handle:
        metadata = handle.metadata()
    assert all(isinstance(value, str) for value in metadata.values())
    expected = {
        "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "8.0",
        # Asked for mixed precision, but a CPU trains in fp32: kohya's "no".
        "ss_mixed_precision": "no", "ss_steps": "2", "ss_epoch": "1", "ss_num_epochs": "1",
        "ss_num_batches_per_epoch": "3", "ss_num_train_images": "3", "ss_lr_warmup_steps": "0",
        "ss_clip_skip": "None", "ss_base_model_version": "sd_v1", "ss_v2": "False", "ss_output_name": "Card style",
        "ss_resolution": "(64, 64)", "ss_enable_bucket": "True",
        "modelspec.sai_model_spec": "1.0.1", "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers", "modelspec.title": "Card style", "modelspec.resolution": "64x64",
        "modelspec.trigger_phrase": "crdz", "modelspec.prediction_type": "epsilon",
    }  # fmt: skip
    assert {key: metadata.get(key) for key in expected} == expected
    assert int(metadata["ss_session_id"]) >= 0 and float(metadata["ss_training_started_at"]) > 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$", metadata["modelspec.date"])
    assert json.loads(metadata["ss_network_args"]) == {"target_modules": "to_q,to_k,to_v,to_out.0"}
    buckets = json.loads(metadata["ss_bucket_info"])["buckets"]
    assert sorted((tuple(b["resolution"]), b["count"]) for b in buckets.values()) == [((48, 80), 2), ((64, 64), 1)]
    # sshs_model_hash is A1111's hash of this very file: sha256 of what follows the header.
    data = trained.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert metadata["sshs_model_hash"] == hashlib.sha256(data[8 + length :]).hexdigest()
    assert re.match(r"^[0-9a-f]{8}$", metadata["sshs_legacy_hash"])
    # Our library reads the alpha back.
    info = lora_inspect(trained)
    assert (info.base, info.rank, info.alpha, info.cross_attention_dim) == ("sd15", 4, 8.0, 768)


def _peft_file(kohya_file: Path, target: Path, unet) -> Path:
    """The same weights in diffusers/PEFT layout (what the trainer wrote before), alpha in adapter metadata."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    state = kohya.kohya_to_peft(load_file(kohya_file), [name for name, _ in unet.named_modules()])
    StableDiffusionPipeline.save_lora_weights(
        save_directory=str(target.parent),
        unet_lora_layers=convert_state_dict_to_diffusers(state),
        weight_name=target.name,
        unet_lora_adapter_metadata={"r": 4, "lora_alpha": 8.0, "target_modules": trainer.TARGET_MODULES},
        safe_serialization=True,
    )
    return target


def test_engine_and_plain_diffusers_make_the_same_image_as_before(trained, tiny_model_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    engine = Engine(
        ModelSource(kind="tiny", location=str(tiny_model_dir), model_id="tiny"), device="cpu", dtype="fp32"
    ).load()
    request = [ImageRequest("crdz, a red card", "blurry", 11)]

    def render(path: Path, weight: float = 1.0) -> np.ndarray:
        ref = LoraRef(name=path.stem, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), path=path, weight=weight)
        batch = BatchSettings(width=64, height=64, steps=4, guidance_scale=7.5, loras=(ref,))
        return np.asarray(engine.generate(request, batch)[0].image, dtype=np.int16)

    base = np.asarray(
        engine.generate(request, BatchSettings(width=64, height=64, steps=4, guidance_scale=7.5))[0].image,
        dtype=np.int16,
    )
    with_kohya = render(trained)
    assert np.abs(with_kohya - base).max() > 0, "the LoRA changes the image"
    # The same weights in the layout we wrote before: the same pixels (within 1/255).
    old_layout = _peft_file(trained, tmp_path / "peft.safetensors", engine.pipe.unet)
    assert np.abs(render(old_layout) - with_kohya).max() <= 1

    # A plain diffusers pipeline with diffusers' own loader, alpha applied as alpha/rank.
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(trained.parent), weight_name=trained.name, adapter_name="kohya")
    config = pipe.unet.peft_config["kohya"]
    assert (config.r, config.lora_alpha) == (4, 8)
    from diffusers import DPMSolverMultistepScheduler

    pipe.scheduler = DPMSolverMultistepScheduler.from_config(engine.pipe.scheduler.config, algorithm_type="dpmsolver++")
    image = pipe(
        "crdz, a red card",
        negative_prompt="blurry",
        width=64,
        height=64,
        num_inference_steps=4,
        guidance_scale=7.5,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    assert np.abs(np.asarray(image, dtype=np.int16) - with_kohya).max() <= 1


def test_resume_reads_a_kohya_checkpoint_back_exactly(trained, tiny_model_dir):
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=8.0, target_modules=trainer.TARGET_MODULES))
    tensors = load_file(trained)
    set_peft_model_state_dict(unet, kohya.kohya_to_peft(tensors, [name for name, _ in unet.named_modules()]))
    again = kohya.peft_to_kohya(get_peft_model_state_dict(unet), alpha=8.0)
    assert set(again) == set(tensors)
    assert all(torch.equal(again[key], tensors[key]) for key in tensors)
