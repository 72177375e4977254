"""LoRA files by what they are: LyCORIS kinds, other model files, other model families, bases from metadata.

Tensor names follow the conventions A1111's ``extensions-builtin/Lora/network_*.py`` and
ComfyUI's weight adapters read (``hada_w1_a``, ``lokr_w1``, ``on_input``, ``a1.weight``,
``oft_blocks``, ``lora_mid``, ``diff``); kohya's metadata keys are those its train_util writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.torch import save_file

from generation.engine.lora_files import LoraFileError, lora_inspect
from generation.engine.runtime import BatchSettings, ImageRequest, LoraRef
from generation.models import Lora
from generation.services.loras import lora_register
from generation.tests.support import pixel_difference

ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
SMALL = BatchSettings(width=64, height=64, steps=2, guidance_scale=7.0)


def _write(path: Path, tensors: dict[str, list[int]], metadata: dict[str, str] | None = None) -> Path:
    save_file({name: torch.zeros(shape) for name, shape in tensors.items()}, str(path), metadata)
    return path


LYCORIS = {
    "LoHa": {f"{ATTN}.hada_w1_a": [320, 4], f"{ATTN}.hada_w1_b": [4, 768], f"{ATTN}.hada_w2_a": [320, 4]},
    "LoKr": {f"{ATTN}.lokr_w1": [4, 4], f"{ATTN}.lokr_w2": [80, 192], f"{ATTN}.alpha": []},
    "(IA)\u00b3": {f"{ATTN}.weight": [768], f"{ATTN}.on_input": []},
    "GLoRA": {f"{ATTN}.a1.weight": [4, 768], f"{ATTN}.a2.weight": [320, 4], f"{ATTN}.b1.weight": [4, 768]},
    "OFT/BOFT": {f"{ATTN}.oft_blocks": [4, 80, 80], f"{ATTN}.alpha": []},
    "Tucker decomposition (lora_mid)": {
        f"{CONV}.lora_down.weight": [4, 320, 1, 1],
        f"{CONV}.lora_mid.weight": [4, 4, 3, 3],
        f"{CONV}.lora_up.weight": [320, 4, 1, 1],
    },
    "full-difference": {f"{ATTN}.diff": [320, 768], f"{ATTN}.diff_b": [320]},
}


@pytest.mark.parametrize("kind", list(LYCORIS))
def test_lycoris_and_other_adapter_kinds_are_named_and_refused(kind, tmp_path):
    path = _write(tmp_path / "style.safetensors", LYCORIS[kind])
    with pytest.raises(LoraFileError) as caught:
        lora_inspect(path)
    message = str(caught.value)
    assert message.startswith("style.safetensors is a")
    assert kind in message and "(1 layer)" in message
    assert "diffusers cannot apply it to a Stable Diffusion model, so it is not supported" in message
    assert "not a LoRA (a full checkpoint or an embedding?)" not in message


def test_diffusers_itself_refuses_loha_and_lokr_for_a_stable_diffusion_pipeline(engine, tmp_path):
    """The reason they are refused: if a diffusers upgrade loads them, this fails and they can be supported."""
    name, module = next((n, m) for n, m in engine.pipe.unet.named_modules() if n.endswith("attn2.to_k"))
    key = "lora_unet_" + name.replace(".", "_")
    out_features, in_features = module.weight.shape
    files = {
        "loha": {
            f"{key}.hada_w1_a": torch.randn(out_features, 2),
            f"{key}.hada_w1_b": torch.randn(2, in_features),
            f"{key}.hada_w2_a": torch.randn(out_features, 2),
            f"{key}.hada_w2_b": torch.randn(2, in_features),
        },
        "lokr": {
            f"{key}.lokr_w1": torch.randn(4, 4),
            f"{key}.lokr_w2": torch.randn(out_features // 4, in_features // 4),
        },
    }
    for label, tensors in files.items():
        path = tmp_path / f"{label}.safetensors"
        save_file(tensors, str(path))
        with pytest.raises(ValueError, match="have not been correctly renamed"):
            engine.pipe.load_lora_weights(str(path), adapter_name=f"probe_{label}")


@pytest.mark.parametrize(
    ("tensors", "what"),
    [
        ({"emb_params": [2, 768]}, "a textual-inversion embedding, not a LoRA"),
        ({"clip_l": [2, 768], "clip_g": [2, 1280]}, "a textual-inversion embedding, not a LoRA"),
        (
            {"model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3]},
            "a full Stable Diffusion checkpoint, not a LoRA (name it in IMAGINEER_MODEL",
        ),
        ({"control_model.input_hint_block.0.weight": [16, 3, 3, 3]}, "a ControlNet model, not a LoRA"),
        ({"decoder.up.0.block.0.conv1.weight": [128, 128, 3, 3], "post_quant_conv.weight": [4, 4, 1, 1]}, "a VAE"),
    ],
)
def test_model_files_that_are_not_loras_say_what_they_are(tensors, what, tmp_path):
    with pytest.raises(LoraFileError) as caught:
        lora_inspect(_write(tmp_path / "thing.safetensors", tensors))
    assert str(caught.value).startswith(f"thing.safetensors is {what}")


@pytest.mark.parametrize(
    ("tensors", "metadata", "family"),
    [
        ({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": [4, 3072]}, None, "FLUX.1"),
        ({"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": [4, 3072]}, None, "FLUX.1"),
        ({"lora_unet_joint_blocks_0_x_block_attn_qkv.lora_down.weight": [4, 1536]}, None, "Stable Diffusion 3"),
        ({f"{CONV}.lora_down.weight": [4, 320, 3, 3]}, {"ss_base_model_version": "flux1"}, "FLUX.1"),
    ],
)
def test_loras_for_other_model_families_are_named(tensors, metadata, family, tmp_path):
    path = _write(tmp_path / "other.safetensors", tensors, metadata)
    with pytest.raises(
        LoraFileError, match=f"is a LoRA for {family}; Imagineer generates with Stable Diffusion 1.x/2.x"
    ):
        lora_inspect(path)


CONV_ONLY = {f"{CONV}.lora_down.weight": [4, 320, 3, 3], f"{CONV}.lora_up.weight": [320, 4, 1, 1]}


@pytest.mark.parametrize(
    ("tensors", "metadata", "base"),
    [
        # The tensors tell: the text encoder's width (CLIP ViT-L 768, OpenCLIP ViT-H 1024).
        ({f"{TE}.lora_down.weight": [4, 768], f"{TE}.lora_up.weight": [768, 4]}, None, "sd15"),
        ({f"{TE}.lora_down.weight": [4, 1024], f"{TE}.lora_up.weight": [1024, 4]}, None, "sd2"),
        (
            {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight": [4, 768]},
            None,
            "sd15",
        ),
        # Tensors and metadata disagree: the tensors win.
        ({f"{TE}.lora_down.weight": [4, 768]}, {"ss_base_model_version": "sdxl_base_v1-0"}, "sd15"),
        # Convolution layers only: the metadata tells.
        (CONV_ONLY, {"ss_base_model_version": "sd_v1"}, "sd15"),
        (CONV_ONLY, {"ss_base_model_version": "sd_v2"}, "sd2"),
        (CONV_ONLY, {"ss_base_model_version": "sdxl_base_v1-0"}, "sdxl"),
        (CONV_ONLY, {"modelspec.architecture": "stable-diffusion-v1/lora"}, "sd15"),
        (CONV_ONLY, {"modelspec.architecture": "stable-diffusion-v2-768-v/lora"}, "sd2"),
        (CONV_ONLY, {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "sdxl"),
        (CONV_ONLY, {"ss_network_module": "networks.lora", "ss_v2": "False"}, "sd15"),
        (CONV_ONLY, {"ss_output_name": "x"}, "unknown"),
        (CONV_ONLY, None, "unknown"),
        # The older diffusers layout is a LoRA too.
        (
            {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight": [4, 768]},
            None,
            "sd15",
        ),
    ],
)
def test_the_base_comes_from_the_tensors_then_from_the_metadata(tensors, metadata, base, tmp_path):
    assert lora_inspect(_write(tmp_path / "x.safetensors", tensors, metadata)).base == base


def _kohya_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    save_file(tensors, str(path), metadata)
    path.chmod(0o644)
    return path


@pytest.mark.django_db
def test_text_encoder_only_and_conv_only_loras_register_as_sd15_and_are_applied(engine, settings):
    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    text_only: dict[str, torch.Tensor] = {}
    for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
        key = f"lora_te_text_model_encoder_layers_0_self_attn_{projection}"
        text_only[f"{key}.lora_down.weight"] = torch.randn(4, 768, generator=generator) * 0.5
        text_only[f"{key}.lora_up.weight"] = torch.randn(768, 4, generator=generator) * 0.5
        text_only[f"{key}.alpha"] = torch.tensor(4.0)
    conv_only: dict[str, torch.Tensor] = {}
    for name, module in engine.pipe.unet.named_modules():
        if name.endswith("resnets.0.conv1"):
            key = "lora_unet_" + name.replace(".", "_")
            out_channels, in_channels = module.weight.shape[:2]
            conv_only[f"{key}.lora_down.weight"] = torch.randn(2, in_channels, 3, 3, generator=generator)
            conv_only[f"{key}.lora_up.weight"] = torch.randn(out_channels, 2, 1, 1, generator=generator)
            conv_only[f"{key}.alpha"] = torch.tensor(2.0)
    kohya = {"ss_network_module": "networks.lora", "ss_base_model_version": "sd_v1"}
    files = {
        "text only": _kohya_file(root / "te.safetensors", text_only, {}),
        "conv only": _kohya_file(root / "conv.safetensors", conv_only, {**kohya, "ss_network_module": "lycoris.kohya"}),
    }
    base_image = engine.generate([ImageRequest("a fox", "", 3)], SMALL)[0].image
    for name, path in files.items():
        lora = lora_register(path=path, name=name)
        assert lora.base == Lora.Base.SD15, name
        ref = LoraRef(name=name, sha256=lora.sha256, path=path, weight=1.0, base=lora.base)
        image = engine.generate([ImageRequest("a fox", "", 3)], BatchSettings(**{**SMALL.__dict__, "loras": (ref,)}))
        assert pixel_difference(base_image, image[0].image) > 0, name


@pytest.mark.django_db
def test_uploading_a_loha_is_a_400_that_names_it(api_as, tmp_path):
    data = _write(tmp_path / "anime_loha.safetensors", LYCORIS["LoHa"]).read_bytes()
    response = api_as("creator").post(
        "/api/loras", {"file": SimpleUploadedFile("anime_loha.safetensors", data)}, format="multipart"
    )
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["file"][0]
    assert message.startswith("anime_loha.safetensors is a LyCORIS LoHa (Hadamard product) file (1 layer)")
    assert not Lora.objects.exists()


@pytest.mark.django_db
def test_a_scan_gives_entries_registered_as_unknown_the_base_their_metadata_names(settings):
    from generation.services.loras import lora_scan

    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    path = _write(root / "conv.safetensors", CONV_ONLY, {"ss_base_model_version": "sd_v1"})
    lora = lora_register(path=path, name="conv")
    Lora.objects.filter(pk=lora.pk).update(base=Lora.Base.UNKNOWN)  # as registered before
    result = lora_scan()
    assert not result.registered and not result.broken
    lora.refresh_from_db()
    assert lora.base == Lora.Base.SD15
