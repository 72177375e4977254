"""Inline ``<lora:name:weight>`` tags and A1111 syntax at submit time, and in the PNG's infotext.

Tags resolve against the library (name, alias, file name, A1111 hash or sha256 prefix) and are
merged with the stack; unknown, unfit or malformed ones are a 400 naming the tag, and nothing
is stored. The infotext keeps the prompt as typed: A1111's reader (``test_infotext.a1111_parse``,
written from A1111's rules) and sd-parsers read the same LoRAs back.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from generation.engine.png import prompt_lora_tags
from generation.infotext import recipe_infotext
from generation.models import BatchGenerationRun, GenerationJob, Lora
from generation.services.jobs import job_submit
from generation.services.loras import lora_register
from generation.services.recipe_import import recipe_import
from generation.services.recipes import image_regenerate
from generation.services.runs import run_start
from generation.services.templates import template_save
from generation.tests.test_infotext import A1111_LORA_TAG, _lora_file, _png, a1111_parse
from imagineer.errors import ApplicationError
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, ImageFactory, LoraFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(settings):
    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return {
        name: lora_register(path=_lora_file(root / f"{stem}.safetensors", seed), name=name)
        for seed, (name, stem) in enumerate([("ink wash", "inkwash_v2"), ("art: deco", "artdeco"), ("plain", "plain")])
    }


def _submit(prompt: str, **kwargs) -> GenerationJob:
    return job_submit(prompt=prompt, width=64, height=64, steps=2, seed=1, **kwargs)


def _refused(prompt: str, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        _submit(prompt, **kwargs)
    assert not GenerationJob.objects.exists()
    return caught.value


def test_tags_join_the_stack_and_the_prompt_keeps_them(library):
    plain = library["plain"]
    job = _submit("a fox <lora:ink wash:0.7>, (night:1.2) <lora:art deco:-0.35>", loras=[(plain, Decimal("1"))])
    assert job.prompt == "a fox <lora:ink wash:0.7>, (night:1.2) <lora:art deco:-0.35>"
    assert [(entry["name"], entry["weight"], entry.get("source")) for entry in job.lora_stack] == [
        ("plain", "1.00", None),
        ("ink wash", "0.7", "prompt"),
        ("art: deco", "-0.35", "prompt"),
    ]
    assert job.prompt_parts["lora_tags"] == [
        {"tag": "<lora:ink wash:0.7>", "name": "ink wash", "sha256": library["ink wash"].sha256},
        {"tag": "<lora:art deco:-0.35>", "name": "art deco", "sha256": library["art: deco"].sha256},
    ]


def test_a_tag_finds_its_lora_by_file_name_hash_or_lyco_alias_and_overrides_the_stack_weight(library):
    ink = library["ink wash"]
    cases = {
        "<lora:InkWash_v2:0.5>": "file name",
        f"<lora:{ink.a1111_hash[:12]}:0.5>": "A1111 short hash",
        f"<lora:{ink.sha256[:10]}:0.5>": "sha256 prefix",
        "<lyco:ink wash:0.5>": "LyCORIS-era tag",
        "<lora:ink wash:te=0.5:unet=0.5>": "named weights",
    }
    for tag, how in cases.items():
        job = _submit(f"a fox {tag}", loras=[(ink, Decimal("0.9"))])
        assert [(entry["name"], entry["weight"]) for entry in job.lora_stack] == [("ink wash", "0.5")], how
    # No weight: A1111's default multiplier, 1.
    assert _submit("a fox <lora:plain>").lora_stack[0]["weight"] == "1.0"


def test_an_unknown_tag_is_a_400_naming_it_and_the_closest_names(library, api_as):
    error = _refused("a fox <lora:ink wsh:0.5>")
    assert error.fields["prompt"] == [
        "Unknown LoRA <lora:ink wsh:0.5>: no LoRA named 'ink wsh' is in the library. Closest: 'ink wash'."
    ]
    assert error.code == "lora_unknown"
    far = _refused("a fox <lora:zzzzqqq:1>")
    assert "No LoRA in the library has a similar name." in far.message
    response = api_as("creator").post("/api/generate", {"prompt": "an owl <lora:plian:0.8>"}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "lora_unknown"
    assert body["fields"]["prompt"] == [
        "Unknown LoRA <lora:plian:0.8>: no LoRA named 'plian' is in the library. Closest: 'plain'."
    ]
    assert not GenerationJob.objects.exists()


def test_unfit_malformed_doubled_and_misplaced_tags_are_400s_naming_the_tag(library):
    LoraFactory(name="xl style", base=Lora.Base.SDXL)
    unfit = _refused("a fox <lora:xl style:0.8>")
    assert unfit.code == "lora_unfit"
    assert unfit.fields["prompt"][0].startswith("<lora:xl style:0.8>: LoRA 'xl style' is made for SDXL")
    assert "outside -2..2" in _refused("a fox <lora:plain:3>").fields["prompt"][0]
    assert _refused("<lora:plain:0.5> <lora:plain:0.6>").fields["prompt"] == [
        "<lora:plain:0.6> and <lora:plain:0.5> name the same LoRA ('plain'); tag each LoRA once."
    ]
    negative = _refused("a fox", negative_prompt="blurry <lora:plain:1>")
    assert negative.fields["negative_prompt"][0].startswith("<lora:plain:1>: LoRA tags work in the prompt")
    assert "Prompt editing" in _refused("a [fox:wolf:0.4]").fields["prompt"][0]
    assert "Alternation" in _refused("a fox", negative_prompt="[ugly|bad]").fields["negative_prompt"][0]
    assert "Hypernetworks are not supported" in _refused("<hypernet:anime:1> a fox").fields["prompt"][0]
    ambiguous = LoraFactory(name="twin", file="one/plain.safetensors")
    assert "matches several LoRAs ('plain', 'twin')" in _refused("<lora:plain:1>").fields["prompt"][0]
    ambiguous.delete()


def test_templates_check_their_tags_when_saved_and_runs_give_each_row_its_tags(library, api_as):
    fields = {
        "name": "Tagged",
        "columns": ["sign", "style"],
        "rows": [{"sign": "Aries", "style": "<lora:plain:0.6>"}, {"sign": "Leo", "style": "gold"}],
        "prompt_template": "{sign}, {style}",
        "base_prompt": "a zodiac card <lora:ink wash:0.8>",
        "style_suffix": "(high detail:1.2)",
        "width": 64,
        "height": 64,
        "steps": 2,
    }
    with pytest.raises(ApplicationError) as caught:
        template_save(**{**fields, "style_suffix": "ornate <lora:decco:1>"})
    assert caught.value.fields["style_suffix"][0].startswith("Unknown LoRA <lora:decco:1>")
    with pytest.raises(ApplicationError) as caught:
        template_save(**{**fields, "rows": [{"sign": "Aries", "style": "<lora:nope:1>"}]})
    assert caught.value.fields["prompt_template"][0].startswith("Row 1 (sign=Aries): Unknown LoRA <lora:nope:1>")
    template = template_save(**fields)

    run = run_start(template=template, theme="noir <lora:art deco:0.3>", overrides={"seed": 3})
    stacks = [[(entry["name"], entry["weight"]) for entry in job.lora_stack] for job in run.jobs.order_by("row_index")]
    assert stacks == [
        [("ink wash", "0.8"), ("art: deco", "0.3"), ("plain", "0.6")],
        [("ink wash", "0.8"), ("art: deco", "0.3")],
    ]
    response = api_as("creator").post(
        f"/api/batch-templates/{template.pk}/generate", {"theme": "noir <lora:art dceo:1>"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["theme"][0].startswith("Unknown LoRA <lora:art dceo:1>")
    assert BatchGenerationRun.objects.count() == 1


def test_a_template_lora_tagged_in_a_row_takes_the_rows_weight():
    lora = LoraFactory(name="cards")
    template = BatchTemplateFactory(prompt_template="{sign} <lora:cards:0.25>, {element}")
    BatchTemplateLoraFactory(template=template, lora=lora, weight=Decimal("0.9"))
    run = run_start(template=template, theme="")
    assert {tuple((e["name"], e["weight"]) for e in job.lora_stack) for job in run.jobs.all()} == {(("cards", "0.25"),)}


def test_the_infotext_keeps_the_tags_as_typed_and_reads_back_in_a1111_and_sd_parsers(library):
    job = _submit("a fox <lora:InkWash_v2:0.7>, at night", loras=[(library["plain"], Decimal("1"))])
    recipe = {
        "prompt": job.prompt,
        "negative_prompt": "",
        "prompt_parts": job.prompt_parts,
        "seed": 1,
        "scheduler": "dpmsolver++",
        "steps": 2,
        "guidance_scale": 7.5,
        "width": 64,
        "height": 64,
        "model": {"id": "imagineer/tiny-sd15-random", "sha256": "ab" * 32},
        "loras": [{"name": e["name"], "sha256": e["sha256"], "weight": float(e["weight"])} for e in job.lora_stack],
    }
    text = recipe_infotext(recipe)
    a1111 = a1111_parse(text)
    # The typed tag stays where it was, once; the stack's LoRA gets a tag at the end.
    assert a1111["Prompt"] == "a fox <lora:InkWash_v2:0.7>, at night <lora:plain:1>"
    assert A1111_LORA_TAG.findall(a1111["Prompt"]) == [("InkWash_v2", "0.7"), ("plain", "1")]
    # "Lora hashes" is keyed by the name in each tag: A1111 finds the file by it under any name.
    ink, plain = library["ink wash"], library["plain"]
    assert a1111["Lora hashes"] == f"plain: {plain.a1111_hash[:12]}, InkWash_v2: {ink.a1111_hash[:12]}"
    assert prompt_lora_tags(a1111["Prompt"]) == ("a fox , at night", [("InkWash_v2", 0.7), ("plain", 1.0)])

    imported = recipe_import(data=_png(text))
    assert [(m.lora.name, m.weight, m.matched_by) for m in imported.loras] == [
        ("ink wash", 0.7, "hash"),
        ("plain", 1.0, "hash"),
    ]
    assert not imported.unmatched


def test_generating_again_from_a_tagged_recipe_gives_the_same_stack(library):
    job = _submit("a fox <lora:ink wash:0.7>", loras=[(library["plain"], Decimal("0.5"))])
    image = ImageFactory()
    GenerationJob.objects.filter(pk=job.pk).update(result_image=image, status=GenerationJob.Status.SUCCEEDED)
    again = image_regenerate(image=image, new_seed=False, created_by=None)
    assert again.prompt == job.prompt and again.lora_stack == job.lora_stack


@pytest.mark.django_db(transaction=True)
def test_a_tagged_lora_draws_what_the_same_lora_in_the_stack_draws(celery_worker, engine, settings):
    """End to end on a real worker: the tag is applied (not encoded as text) and its PNG keeps it."""
    from PIL import Image as PILImage

    from albums.services.files import media_path
    from generation.engine.lora_make import lora_make_random
    from generation.tests.support import WORKER_ENV, pixel_difference
    from imagineer.testing import wait_for

    path = lora_make_random(engine.pipe, Path(settings.LORA_ROOT) / "fox.safetensors", rank=4, seed=3)
    lora = lora_register(path=path, name="fox style")
    celery_worker("gpu", extra_env=WORKER_ENV)
    tagged = _submit("a (red:1.3) fox <lora:fox style:0.8>")
    stacked = _submit("a (red:1.3) fox", loras=[(lora, Decimal("0.8"))])
    plain = _submit("a (red:1.3) fox")
    jobs = [tagged, stacked, plain]

    def finished() -> bool:
        for job in jobs:
            job.refresh_from_db()
        return all(job.status in ("succeeded", "failed") for job in jobs)

    wait_for(finished, timeout=120, message="the three jobs to finish")
    assert [job.status for job in jobs] == ["succeeded"] * 3, [job.error for job in jobs]
    images = []
    for job in jobs:
        with PILImage.open(media_path(job.result_image.file.name)) as png:
            png.load()
            images.append(png)
    assert pixel_difference(images[0], images[1]) <= 1
    assert pixel_difference(images[0], images[2]) > 0
    params = a1111_parse(images[0].text["parameters"])
    assert params["Prompt"] == "a (red:1.3) fox <lora:fox style:0.8>"
    assert params["Lora hashes"] == f"fox style: {lora.a1111_hash[:12]}"


def test_the_generate_page_shows_an_unknown_tag_beside_the_prompt(client):
    from django.urls import reverse

    from imagineer.tests.factories import UserFactory

    LoraFactory(name="film grain")
    client.force_login(UserFactory(role="creator"))
    response = client.post(
        reverse("generation:generate"),
        {"prompt": "fog <lora:film gran:0.5>", "width": "64", "height": "64", "steps": "2", "guidance_scale": "7"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["prompt"] == [
        "Unknown LoRA <lora:film gran:0.5>: no LoRA named 'film gran' is in the library. Closest: 'film grain'."
    ]
    body = response.content.decode()
    assert body.index("Unknown LoRA &lt;lora:film gran:0.5&gt;") > body.index('name="prompt"')
    assert not GenerationJob.objects.exists()
