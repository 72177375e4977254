"""PNG recipe import: each tool's layout -> our single-generation form; hostile files -> 400 naming the problem."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from safetensors.torch import save_file

from generation.infotext import recipe_infotext
from generation.recipes import MAX_FILE_BYTES, RecipeError, png_check
from generation.services.loras import lora_register
from generation.tests import recipe_pngs
from imagineer.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/generate/import"


def _lora(settings, name: str, seed: int):
    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    prefix = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    generator = torch.Generator().manual_seed(seed)
    path = root / f"{name.replace(' ', '_')}.safetensors"
    save_file(
        {
            f"{prefix}.lora_down.weight": torch.randn(4, 768, generator=generator),
            f"{prefix}.lora_up.weight": torch.randn(320, 4, generator=generator),
        },
        str(path),
    )
    return lora_register(path=path, name=name)


@pytest.fixture
def library(settings):
    return {"ink": _lora(settings, "Ink Wash v2", 1), "paper": _lora(settings, "paper", 2)}


def _post(client, data: bytes, name: str = "recipe.png"):
    return client.post(URL, {"file": SimpleUploadedFile(name, data, content_type="image/png")}, format="multipart")


def test_a1111_recipe_loras_matched_by_hash_the_unknown_one_listed(api_as, library):
    ink = library["ink"]
    response = _post(api_as("creator"), recipe_pngs.a1111_png(ink.a1111_hash[:12]))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["generator"] == "A1111"
    assert body["prompt"] == "masterpiece, a castle on a hill: at dusk, (glowing windows:1.2)\nsecond line"
    assert body["negative_prompt"] == "blurry, lowres"
    assert (body["width"], body["height"], body["steps"], body["guidance_scale"], body["seed"]) == (
        512, 768, 30, 6.5, 123456789,
    )  # fmt: skip
    assert (body["sampler"], body["schedule_type"], body["scheduler"]) == ("DPM++ 2M", "Karras", "dpmsolver++-karras")
    # Named "ink wash" there, "Ink Wash v2" here: found by A1111's hash of the file.
    assert body["loras"] == [{"id": ink.pk, "name": "Ink Wash v2", "weight": 0.7, "matched_by": "hash"}]
    assert body["unmatched_loras"] == [{"name": "missing style", "weight": 1.1, "hash": recipe_pngs.A1111_HASH}]
    assert any("v1-5-pruned-emaonly" in note for note in body["notes"])


def test_comfyui_invokeai_and_novelai_recipes(api_as, library):
    client = api_as("creator")
    comfy = _post(client, recipe_pngs.comfyui_png()).json()
    assert (comfy["generator"], comfy["prompt"], comfy["negative_prompt"]) == (
        "ComfyUI", "a tarot card, the moon", "blurry, text",
    )  # fmt: skip
    assert (comfy["width"], comfy["height"], comfy["steps"], comfy["guidance_scale"], comfy["seed"]) == (
        512, 640, 20, 7.0, 42,
    )  # fmt: skip
    assert (comfy["sampler"], comfy["schedule_type"], comfy["scheduler"]) == (
        "dpmpp_2m",
        "karras",
        "dpmsolver++-karras",
    )
    # LoraLoader's file "styles/ink wash.safetensors" matches no name here: listed, with its weight.
    assert comfy["loras"] == [] and comfy["unmatched_loras"] == [{"name": "ink wash", "weight": 0.8, "hash": ""}]

    invoke = _post(client, recipe_pngs.invokeai_png()).json()
    assert (invoke["generator"], invoke["prompt"], invoke["negative_prompt"]) == (
        "InvokeAI", "a zodiac sign, leo, golden mane", "blurry",
    )  # fmt: skip
    assert (invoke["width"], invoke["height"], invoke["steps"], invoke["guidance_scale"], invoke["seed"]) == (
        576, 512, 25, 7.5, 7,
    )  # fmt: skip
    assert (invoke["sampler"], invoke["scheduler"]) == ("euler_a", "euler-a")
    paper = library["paper"]
    assert invoke["loras"] == [{"id": paper.pk, "name": "paper", "weight": 0.6, "matched_by": "name"}]

    novel = _post(client, recipe_pngs.novelai_png()).json()
    assert (novel["generator"], novel["prompt"], novel["negative_prompt"]) == (
        "NovelAI", "a playing card, queen of hearts", "lowres, bad anatomy",
    )  # fmt: skip
    assert (novel["width"], novel["height"], novel["steps"], novel["guidance_scale"], novel["seed"]) == (
        512, 768, 28, 11.0, 1234,
    )  # fmt: skip
    assert (novel["sampler"], novel["scheduler"]) == ("k_euler_ancestral", "euler-a")


def test_our_own_png_round_trips_into_the_form(api_as, library):
    ink, paper = library["ink"], library["paper"]
    text = recipe_infotext(
        {
            "prompt": 'a "quoted", colon: card\nwith (parentheses:1.1)',
            "negative_prompt": "blurry\nugly",
            "seed": 99,
            "scheduler": "dpmsolver++",
            "steps": 12,
            "guidance_scale": 5.0,
            "width": 384,
            "height": 512,
            "model": {"id": "imagineer/tiny-sd15-random", "sha256": "cd" * 32},
            "loras": [
                {"name": ink.name, "sha256": ink.sha256, "weight": 0.5},
                {"name": paper.name, "sha256": paper.sha256, "weight": -0.25},
            ],
            "libraries": {"diffusers": "0.42.1"},
        }
    )
    body = _post(api_as("creator"), recipe_pngs.png_with_text({"parameters": text})).json()
    assert body["generator"] == "Imagineer"
    assert (body["prompt"], body["negative_prompt"]) == (
        'a "quoted", colon: card\nwith (parentheses:1.1)',
        "blurry\nugly",
    )
    assert (body["width"], body["height"], body["steps"], body["guidance_scale"], body["seed"], body["scheduler"]) == (
        384, 512, 12, 5.0, 99, "dpmsolver++",
    )  # fmt: skip
    assert [(lora["id"], lora["weight"], lora["matched_by"]) for lora in body["loras"]] == [
        (ink.pk, 0.5, "hash"),
        (paper.pk, -0.25, "hash"),
    ]
    assert body["unmatched_loras"] == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (recipe_pngs.huge_text_png(), "text chunk 'parameters' is 2.0 MB"),
        (recipe_pngs.text_bomb_png(), "inflates to more than 1 MB: refused as a decompression bomb"),
        (recipe_pngs.pixel_bomb_png(), "claims 100000x100000 pixels"),
        (b"\x00\x01garbage" * 100, "not a PNG file"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 200, "not a PNG file"),
        (recipe_pngs.truncated_png(), "truncated"),
        (recipe_pngs.png_with_text({}), "carries no generation recipe"),
        (recipe_pngs.png_with_text({"prompt": "{not json", "workflow": "[]"}), "carries no generation recipe"),
    ],
    ids=["huge-text", "text-bomb", "pixel-bomb", "garbage", "jpeg", "truncated", "no-metadata", "bad-comfy-json"],
)
def test_hostile_or_empty_pngs_are_a_400_naming_the_problem(api_as, data, message):
    response = _post(api_as("creator"), data)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["fields"]["file"][0], error


def test_size_limit_and_permissions(api_as):
    with pytest.raises(RecipeError, match="at most 32 MB"):
        png_check(b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_FILE_BYTES)
    assert _post(api_as("viewer"), recipe_pngs.novelai_png()).status_code == 403
    assert _post(api_as(None), recipe_pngs.novelai_png()).status_code == 401
    missing = api_as("creator").post(URL, {}, format="multipart")
    assert missing.status_code == 400 and "multipart field 'file'" in missing.json()["error"]["fields"]["file"][0]


def test_generate_page_import_prefills_the_form(client, library):
    creator = UserFactory(role="creator")
    client.force_login(creator)
    ink = library["ink"]
    upload = io.BytesIO(recipe_pngs.a1111_png(ink.a1111_hash[:12]))
    upload.name = "castle.png"
    response = client.post(reverse("generation:generate-import"), {"file": upload})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["prompt"].startswith("masterpiece, a castle on a hill")
    assert (form.initial["width"], form.initial["height"], form.initial["seed"]) == (512, 768, 123456789)
    assert form.initial["scheduler"] == "dpmsolver++-karras" and form.initial[f"lora_{ink.pk}"] == 0.7
    body = response.content.decode()
    assert "Read a recipe made by <strong>A1111</strong>" in body and "missing style at 1.1" in body
    assert 'value="123456789"' in body and '<option value="dpmsolver++-karras" selected>' in body

    bad = io.BytesIO(recipe_pngs.pixel_bomb_png())
    bad.name = "bomb.png"
    refused = client.post(reverse("generation:generate-import"), {"file": bad})
    assert refused.status_code == 400 and "decompression bomb" in refused.content.decode()
    assert client.post(reverse("generation:generate-import")).status_code == 400


def test_a_recipe_whose_prompt_uses_syntax_we_do_not_draw_says_so(api_as):
    text = (
        "a [cat:dog:0.4] on a mat, (soft light:1.2)\nNegative prompt: [ugly|bad]\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512"
    )
    response = _post(api_as("creator"), recipe_pngs.png_with_text({"parameters": text}))
    assert response.status_code == 200, response.json()
    notes = response.json()["notes"]
    assert any(note.startswith("The prompt uses A1111 syntax that is not drawn here (Prompt editing") for note in notes)
    assert any(
        note.startswith("The negative prompt uses A1111 syntax that is not drawn here (Alternation") for note in notes
    )


def test_lora_tags_without_a_weight_or_as_lyco_are_matched_and_odd_ones_stay_in_the_prompt(api_as, library):
    text = (
        "a castle <lora:paper> <lyco:Ink Wash v2:0.4> <lora:film:1:0.5>\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512"
    )
    response = _post(api_as("creator"), recipe_pngs.png_with_text({"parameters": text}))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [(lora["name"], lora["weight"], lora["matched_by"]) for lora in body["loras"]] == [
        ("paper", 1.0, "name"),
        ("Ink Wash v2", 0.4, "name"),
    ]
    # Two different weights cannot be drawn: the tag stays, and submitting the form explains why.
    assert body["prompt"] == "a castle <lora:film:1:0.5>"
