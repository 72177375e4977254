"""The engine in the test process with the tiny model: LoRAs, batching, long prompts, single files."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.engine.lora_files import LoraFileError, lora_inspect
from generation.engine.lora_make import lora_make_random, lora_make_sdxl_shaped
from generation.engine.runtime import BatchSettings, Engine, EngineError, ImageRequest, LoraRef, LoraUnfitError
from generation.engine.source import ModelSource, ModelSourceError
from generation.model_config import model_source
from generation.tests.support import pixel_difference

SMALL = BatchSettings(width=64, height=64, steps=3, guidance_scale=7.0)
LONG = "a zodiac card, " + ", ".join(f"a ram with curled golden horns number {n}" for n in range(25))


def _ref(path: Path, weight: float, name: str = "cards") -> LoraRef:
    from albums.services.files import sha256_file

    return LoraRef(name=name, sha256=sha256_file(path), path=path, weight=weight, base=lora_inspect(path).base)


@pytest.fixture(scope="module")
def lora_files(engine, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    return {
        "a": lora_make_random(engine.pipe, folder / "a.safetensors", rank=4, alpha=8, seed=1),
        "b": lora_make_random(engine.pipe, folder / "b.safetensors", rank=2, seed=2),
        "xl": lora_make_sdxl_shaped(folder / "xl.safetensors"),
    }


def _one(engine: Engine, batch: BatchSettings = SMALL, prompt: str = "a tarot card", seed: int = 7):
    return engine.generate([ImageRequest(prompt, "blurry", seed)], batch)[0].image


def test_lora_stack_changes_the_output_and_weight_zero_gives_the_base(engine, lora_files):
    base = _one(engine)
    a = _ref(lora_files["a"], 1.0, "a")
    b = _ref(lora_files["b"], 0.8, "b")
    with_stack = _one(engine, BatchSettings(**{**SMALL.__dict__, "loras": (a, b)}))
    only_a = _one(engine, BatchSettings(**{**SMALL.__dict__, "loras": (a,)}))
    assert pixel_difference(base, with_stack) > 5
    assert pixel_difference(only_a, with_stack) > 0
    zero = _one(engine, BatchSettings(**{**SMALL.__dict__, "loras": (_ref(lora_files["a"], 0.0, "a"),)}))
    assert pixel_difference(base, zero) == 0
    # Back to no LoRA: the adapters stay cached but are off.
    assert pixel_difference(base, _one(engine)) == 0
    assert len(engine._adapters) == 2


def test_sdxl_lora_is_refused_before_any_work_and_a_failed_load_leaves_the_pipeline_clean(engine, lora_files, tmp_path):
    base = _one(engine)
    xl = _ref(lora_files["xl"], 1.0, "xl-style")
    with pytest.raises(LoraUnfitError, match=r"'xl-style' is made for SDXL but the loaded model is SD 1.x"):
        engine.generate([ImageRequest("x", "", 1)], BatchSettings(**{**SMALL.__dict__, "loras": (xl,)}))
    # SD1.5 names and cross-attention width, wrong inner shapes: passes the check, fails to load.
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(lora_files["a"]))
    broken = tmp_path / "broken.safetensors"
    save_file(
        {
            key: value[:, :1].contiguous() if "lora_A" in key and "attn1" in key else value
            for key, value in tensors.items()
        },
        str(broken),
    )
    adapters_before = dict(engine.pipe.unet.peft_config) if hasattr(engine.pipe.unet, "peft_config") else {}
    with pytest.raises(EngineError, match="could not be loaded"):
        engine.generate(
            [ImageRequest("x", "", 1)], BatchSettings(**{**SMALL.__dict__, "loras": (_ref(broken, 1.0, "broken"),)})
        )
    adapters_after = dict(engine.pipe.unet.peft_config) if hasattr(engine.pipe.unet, "peft_config") else {}
    assert set(adapters_after) == set(adapters_before)
    assert pixel_difference(base, _one(engine)) == 0


def test_same_seed_same_image_batched_or_alone(engine):
    requests = [
        ImageRequest("a red fox", "ugly", 11),
        ImageRequest(LONG, "", 12),
        ImageRequest("a blue whale", "blurry, low quality", 13),
        ImageRequest("a red fox", "ugly", 14),
        ImageRequest(LONG + ", night", "", 15),
    ]
    batched = engine.generate(requests, SMALL, batch_size=4)
    assert [image.prompt_chunks for image in batched] == [1, 5, 1, 1, 5]
    for request, image in zip(requests, batched, strict=True):
        alone = engine.generate([request], SMALL, batch_size=1)[0]
        # Batched matrix products may round differently in the last bit; allow 1/255.
        assert pixel_difference(alone.image, image.image) <= 1
    assert pixel_difference(batched[0].image, batched[3].image) > 0  # the seed matters


def test_long_prompts_are_encoded_in_chunks_not_truncated(engine):
    chunks = engine.prompt_chunks(LONG)
    assert len(chunks) > 1 and all(len(chunk) <= 75 for chunk in chunks)
    assert sum(len(chunk) for chunk in chunks) == len(engine.pipe.tokenizer(LONG, add_special_tokens=False).input_ids)
    # What comes after token 77 changes the image: it is not cut off.
    first = _one(engine, prompt=LONG + ", crimson")
    second = _one(engine, prompt=LONG + ", emerald")
    assert pixel_difference(first, second) > 0


def test_single_file_checkpoint_loads_offline(engine, tmp_path):
    from generation.engine.checkpoint import checkpoint_write

    # A fresh pipeline: the module's engine carries LoRA adapters by now.
    folder = Engine(engine.source, device="cpu", dtype="fp32").load()
    checkpoint = checkpoint_write(folder.pipe, tmp_path / "tiny-sd15.safetensors")
    source = ModelSource(
        kind="single_file",
        location=str(checkpoint),
        model_id="tiny-sd15",
        single_file_config=engine.source.location,
    )
    single = Engine(source, device="cpu", dtype="fp32").load()
    assert single.model_hash and single.base == "sd15"
    request = [ImageRequest("a lighthouse", "", 3)]
    assert pixel_difference(folder.generate(request, SMALL)[0].image, single.generate(request, SMALL)[0].image) == 0


def test_sd15_config_folder_has_the_real_tokenizer_and_configs():
    from diffusers import UNet2DConditionModel
    from django.conf import settings
    from transformers import CLIPTokenizer

    folder = Path(settings.IMAGINEER_SD15_CONFIG_DIR)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of an astronaut riding a horse").input_ids == [
        49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407,
    ]  # fmt: skip
    assert UNet2DConditionModel.load_config(folder / "unet")["cross_attention_dim"] == 768


def test_model_sources_refuse_pickles_and_name_what_is_wrong(settings, tmp_path):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not really")
    with pytest.raises(ModelSourceError, match="pickle"):
        model_source(str(pickle))
    with pytest.raises(ModelSourceError, match="no such file"):
        model_source(str(tmp_path / "missing.safetensors"))
    assert model_source("runwayml/stable-diffusion-v1-5").kind == "hub"
    assert model_source("").is_noise
    with pytest.raises(LoraFileError, match="pickle"):
        lora_inspect(tmp_path / "style.ckpt")


def test_lora_detection_reads_base_rank_and_alpha(lora_files):
    a = lora_inspect(lora_files["a"])
    assert (a.base, a.rank, a.alpha, a.cross_attention_dim) == ("sd15", 4, 8.0, 768)
    xl = lora_inspect(lora_files["xl"])
    assert (xl.base, xl.rank) == ("sdxl", 4)


@pytest.mark.django_db
def test_hardware_options_from_the_configuration_reach_the_resident_engine(tiny_model_dir):
    import torch
    from diffusers.models.attention_processor import AttnProcessor2_0, SlicedAttnProcessor

    from generation import worker
    from imagineer.config import config_update

    torch.set_num_threads(1)
    worker._engine = worker._engine_options = None
    try:
        first = worker.engine_get()
        assert not first.attention_slicing and not first.vae_slicing
        assert all(isinstance(p, AttnProcessor2_0) for p in first.pipe.unet.attn_processors.values())

        config_update(
            changes={
                "hardware": {"enable_attention_slicing": True, "enable_vae_slicing": True},
                "generation": {"batch_size": 3},
            },
            user=None,
            partial=True,
        )
        same = worker.engine_get()
        assert same is first, "slicing and batch size change in place, without reloading the pipeline"
        assert same.attention_slicing and same.pipe.vae.use_slicing
        assert any(isinstance(p, SlicedAttnProcessor) for p in same.pipe.unet.attn_processors.values())
        assert same.batch_size(64, 64) == 3

        config_update(
            changes={"hardware": {"mixed_precision": False, "enable_attention_slicing": False}}, user=None, partial=True
        )
        assert worker.engine_get() is same and not same.attention_slicing
        assert all(isinstance(p, AttnProcessor2_0) for p in same.pipe.unet.attn_processors.values())
    finally:
        worker._engine = worker._engine_options = None
