"""IMAGINEER_MODEL checks made before anything is loaded."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from generation.engine.source import ModelSourceError
from generation.model_config import model_source


def test_an_sdxl_single_file_checkpoint_is_refused_naming_sdxl(tmp_path):
    sdxl = tmp_path / "sd_xl_base_1.0.safetensors"
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
            "model.diffusion_model.label_emb.0.0.weight": torch.zeros(1280, 2816),
            "conditioner.embedders.0.transformer.text_model.embeddings.position_ids": torch.zeros(1, 77),
            "conditioner.embedders.1.model.positional_embedding": torch.zeros(77, 1280),
        },
        str(sdxl),
    )
    with pytest.raises(ModelSourceError, match=r"is an SDXL checkpoint.*Stable Diffusion 1\.x"):
        model_source(str(sdxl))


def test_an_sd15_single_file_checkpoint_is_accepted(tmp_path):
    sd15 = tmp_path / "v1-5.safetensors"
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
            "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.zeros(1, 77),
        },
        str(sd15),
    )
    source = model_source(str(sd15))
    assert (source.kind, source.model_id) == ("single_file", "v1-5")


def test_a_file_that_is_not_safetensors_is_refused_with_the_reason(tmp_path):
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"\x00" * 4)
    with pytest.raises(ModelSourceError, match="too short"):
        model_source(str(broken))
