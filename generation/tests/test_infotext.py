"""Our PNG infotext, read the way AUTOMATIC1111 reads it and the way sd-parsers reads it.

The A1111 reader below is written here from A1111's documented rules
(``modules/infotext_utils.py: parse_generation_parameters``), not imported from our code, so
that a mistake in our writer cannot hide behind the same mistake in our reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage
from PIL import PngImagePlugin
from safetensors.torch import save_file
from sd_parsers import ParserManager

from generation.engine.lora_hash import lora_file_hashes
from generation.engine.png import prompt_lora_tags
from generation.engine.schedulers import SCHEDULERS, scheduler_from_sampler
from generation.infotext import recipe_infotext
from generation.services.loras import lora_path, lora_register

# A1111 1.10's sampler names and schedule type labels (modules/sd_samplers_*.py, sd_schedulers.py).
A1111_SAMPLERS = {
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE", "Euler a",
    "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart", "DDIM", "DDIM CFG++",
    "PLMS", "UniPC", "LCM",
}  # fmt: skip
A1111_SCHEDULE_TYPES = {
    "Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
    "Align Your Steps", "Simple", "Normal", "DDIM", "Beta",
}  # fmt: skip
# A1111's timestep samplers ignore the schedule type.
A1111_TIMESTEP_SAMPLERS = {"DDIM", "PLMS", "UniPC", "DDIM CFG++"}

A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
A1111_LORA_TAG = re.compile(r"<lora:([^:>]+):([^>]+)>")


def a1111_parse(text: str) -> dict[str, str]:
    """AUTOMATIC1111's parse_generation_parameters, without its UI defaults."""
    result: dict[str, str] = {}
    *lines, last = text.strip().split("\n")
    if len(A1111_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt, negative, done_with_prompt = "", "", False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    result["Prompt"], result["Negative prompt"] = prompt, negative
    for key, value in A1111_PARAM.findall(last):
        if value[:1] == '"' and value[-1:] == '"':
            value = json.loads(value)
        size = re.match(r"^(\d+)x(\d+)$", value)
        if size:
            result[f"{key}-1"], result[f"{key}-2"] = size.groups()
        else:
            result[key] = value
    return result


def a1111_lora_hash(path: Path) -> str:
    """A1111's addnet hash: sha256 of what follows the safetensors header."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + length :]).hexdigest()


def _lora_file(path: Path, seed: int, metadata: dict[str, str] | None = None) -> Path:
    generator = torch.Generator().manual_seed(seed)
    prefix = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file(
        {
            f"{prefix}.lora_down.weight": torch.randn(4, 768, generator=generator),
            f"{prefix}.lora_up.weight": torch.randn(320, 4, generator=generator),
            f"{prefix}.alpha": torch.tensor(2.0),
        },
        str(path),
        metadata,
    )
    return path


PROMPT = 'a "gothic" card, (ornate:1.2), ace of spades: the one\nsecond line, with [brackets]'
NEGATIVE = 'blurry, "low" quality:\n(bad hands:1.4)'


@pytest.fixture
def three_loras(db, settings):
    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    names = ["ink: wash", "art, deco", "plain"]
    return [
        lora_register(path=_lora_file(root / f"l{index}.safetensors", index), name=name)
        for index, name in enumerate(names)
    ]


def _recipe(loras, scheduler: str = "dpmsolver++") -> dict:
    return {
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "seed": 4242,
        "scheduler": scheduler,
        "steps": 25,
        "guidance_scale": 7.5,
        "width": 512,
        "height": 720,
        "model": {"id": "imagineer/tiny-sd15-random", "sha256": "ab" * 32},
        "loras": [
            {"name": lora.name, "sha256": lora.sha256, "weight": weight}
            for lora, weight in zip(loras, [0.8, -0.35, 1.0][: len(loras)], strict=True)
        ],
        "libraries": {"diffusers": "0.42.1"},
    }


def _png(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_lora_hash_is_a1111s_and_kohyas_sshs_model_hash_wins(tmp_path):
    path = _lora_file(tmp_path / "a.safetensors", 1)
    sha256, a1111 = lora_file_hashes(path)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert a1111 == a1111_lora_hash(path) != sha256
    # Metadata does not change it: it is over the tensor data.
    again = _lora_file(tmp_path / "b.safetensors", 1, {"ss_output_name": "other"})
    assert lora_file_hashes(again)[1] == a1111
    kohya = _lora_file(tmp_path / "c.safetensors", 1, {"sshs_model_hash": "f" * 64})
    assert lora_file_hashes(kohya)[1] == "f" * 64


def test_infotext_reads_back_field_for_field_in_a1111_and_sd_parsers(three_loras):
    text = recipe_infotext(_recipe(three_loras))
    png = _png(text)

    a1111 = a1111_parse(text)
    prompt, tags = prompt_lora_tags(a1111["Prompt"])
    assert prompt == PROMPT and "\n" in a1111["Prompt"]
    assert A1111_LORA_TAG.findall(a1111["Prompt"]) == [("ink wash", "0.8"), ("art deco", "-0.35"), ("plain", "1")]
    assert tags == [("ink wash", 0.8), ("art deco", -0.35), ("plain", 1.0)]
    assert a1111["Negative prompt"] == NEGATIVE
    hashes = [lora.a1111_hash[:12] for lora in three_loras]
    assert {key: value for key, value in a1111.items() if key not in ("Prompt", "Negative prompt")} == {
        "Steps": "25",
        "Sampler": "DPM++ 2M",
        "Schedule type": "Uniform",
        "CFG scale": "7.5",
        "Seed": "4242",
        "Size-1": "512",
        "Size-2": "720",
        "Model hash": "abababab" + "ab",
        "Model": "imagineer/tiny-sd15-random",
        "RNG": "CPU",
        "Lora hashes": f"ink wash: {hashes[0]}, art deco: {hashes[1]}, plain: {hashes[2]}",
        "Version": "imagineer 0.1.0 diffusers 0.42.1",
    }
    # The field order is A1111's.
    keys = [key for key, _value in A1111_PARAM.findall(text.split("\n")[-1])]
    assert keys == [
        "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model", "RNG",
        "Lora hashes", "Version",
    ]  # fmt: skip
    for lora in three_loras:
        assert lora.a1111_hash == a1111_lora_hash(lora_path(lora))

    parsed = ParserManager().parse(io.BytesIO(png))
    assert parsed is not None and parsed.generator.value == "AUTOMATIC1111"
    (sampler,) = parsed.samplers
    assert str(sampler.prompts[0]) == a1111["Prompt"]
    assert str(sampler.negative_prompts[0]) == NEGATIVE
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters == {"cfg_scale": "7.5", "seed": "4242", "steps": "25", "scheduler": "Uniform"}
    assert (sampler.model.name, sampler.model.hash) == ("imagineer/tiny-sd15-random", "ababababab")
    assert parsed.metadata["Size"] == "512x720" and parsed.metadata["RNG"] == "CPU"
    assert parsed.metadata["Version"] == "imagineer 0.1.0 diffusers 0.42.1"


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_every_scheduler_has_a1111_names_that_map_back_to_it(db, scheduler):
    text = recipe_infotext(_recipe([], scheduler))
    fields = a1111_parse(text)
    assert fields["Sampler"] in A1111_SAMPLERS and fields["Schedule type"] in A1111_SCHEDULE_TYPES
    if fields["Sampler"] in A1111_TIMESTEP_SAMPLERS:
        assert fields["Schedule type"] == "Automatic"
    else:
        # A1111's Automatic would mean Karras for DPM++ 2M: the schedule must be named.
        assert fields["Schedule type"] != "Automatic"
    assert scheduler_from_sampler(fields["Sampler"], fields["Schedule type"]) == scheduler
    parsed = ParserManager().parse(io.BytesIO(_png(text)))
    assert parsed.samplers[0].name == fields["Sampler"]
    assert parsed.samplers[0].parameters["scheduler"] == fields["Schedule type"]


def test_plain_and_karras_dpm_are_told_apart_and_old_a1111_names_are_read():
    assert scheduler_from_sampler("DPM++ 2M", "Uniform") == "dpmsolver++"
    assert scheduler_from_sampler("DPM++ 2M", "Karras") == "dpmsolver++-karras"
    # A1111 >= 1.9 reads a missing or Automatic schedule type of DPM++ 2M as Karras.
    assert scheduler_from_sampler("DPM++ 2M", "") == "dpmsolver++-karras"
    assert scheduler_from_sampler("DPM++ 2M Karras") == "dpmsolver++-karras"
    assert scheduler_from_sampler("dpmpp_2m", "karras") == "dpmsolver++-karras"
    assert scheduler_from_sampler("dpmpp_2m", "normal") == "dpmsolver++"
    assert scheduler_from_sampler("euler_ancestral") == "euler-a"
    assert scheduler_from_sampler("k_euler") == "euler"
    assert scheduler_from_sampler("DPM adaptive") is None
