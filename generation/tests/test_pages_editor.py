"""The template editor, the live preview, the LoRA library pages and the stack picker (Django test client)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import BatchTemplate, Lora
from generation.tests.api_helpers import SD15_TENSORS, SDXL_TENSORS, safetensors_bytes
from generation.tokens import prompt_token_count, prompt_tokens
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, LoraFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW = reverse("generation:template-new")
PREVIEW = reverse("generation:template-preview")


@pytest.fixture
def creator(client):
    user = UserFactory(role="creator")
    client.force_login(user)
    return user


def _fields(**changes):
    data = {
        "name": "Signs",
        "csv_text": "sign,element\nAries,fire\nTaurus,earth\n",
        "base_prompt": "a zodiac card",
        "prompt_template": "{sign}, {element} element",
        "style_suffix": "high detail",
        "negative_prompt": "",
        "example_theme": "art deco",
        "width": "64",
        "height": "64",
        "steps": "2",
        "guidance_scale": "7",
    }
    data.update(changes)
    return data


def test_a_new_template_with_a_non_latin_column_and_a_lora_is_saved(client, creator):
    lora = LoraFactory(name="inkwash")
    data = _fields(csv_text="знак,element\nОвен,fire\n", prompt_template="{знак}, {element}")
    data[f"lora_{lora.pk}"] = "0.7"
    response = client.post(NEW, data)
    template = BatchTemplate.objects.get(name="Signs")
    assert response.status_code == 302 and response["Location"] == f"/templates/{template.slug}/"
    assert template.columns == ["знак", "element"] and template.created_by == creator and not template.is_builtin
    assert [(entry.lora, entry.weight) for entry in template.lora_stack.all()] == [(lora, Decimal("0.70"))]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"csv_text": ""}, "csv_text", "Upload a CSV file or write the rows as CSV text."),
        ({"csv_text": "sign name,x\nA,B\n"}, "csv_text", "cannot be used as a {placeholder}"),
        ({"csv_text": "sign,element\nAries\n"}, "csv_text", "Row 1 (line 2) has 1 fields but the header has 2"),
        ({"prompt_template": "{sign} {colour}"}, "prompt_template", "Unknown placeholder {colour}"),
        ({"prompt_template": ""}, "prompt_template", "The prompt template is empty"),
        ({"width": "100"}, "width", "Width 100 is not a multiple of 8; use 96 or 104."),
        ({"steps": "0"}, "steps", "greater than or equal to"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_saved(client, creator, changes, field, message):
    response = client.post(NEW, _fields(**changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert not BatchTemplate.objects.exists()


def test_an_uploaded_csv_replaces_the_text_and_an_oversized_one_is_refused(client, creator):
    upload = SimpleUploadedFile("signs.csv", "\ufeffsign,element\nLeo,fire\n".encode(), content_type="text/csv")
    assert client.post(NEW, {**_fields(csv_text="ignored"), "csv_file": upload}).status_code == 302
    assert BatchTemplate.objects.get().csv_data == [{"sign": "Leo", "element": "fire"}]
    big = SimpleUploadedFile("big.csv", b"sign,element\n" + b"Leo,fire\n" * 600_000, content_type="text/csv")
    response = client.post(NEW, {**_fields(name="Big"), "csv_file": big})
    assert response.status_code == 400
    assert "the limit is 5 MiB" in " ".join(response.context["form"].errors["csv_file"])


def test_an_lora_unfit_for_the_model_is_refused_beside_its_weight(client, creator):
    xl = LoraFactory(name="xl-style", base=Lora.Base.SDXL)
    response = client.post(NEW, {**_fields(), f"lora_{xl.pk}": "1"})
    assert response.status_code == 400
    assert "'xl-style' is made for SDXL but the loaded model is SD 1.x" in " ".join(
        response.context["form"].errors[f"lora_{xl.pk}"]
    )
    assert 'data-unfit="LoRA' in response.content.decode()
    assert not BatchTemplate.objects.exists()


def test_the_preview_shows_each_prompt_with_the_typed_theme_and_its_token_count(client, creator):
    response = client.post(PREVIEW, _fields(preview_theme="stained glass"))
    body = response.content.decode()
    assert response.status_code == 200
    prompt = "a zodiac card, stained glass, Aries, fire element, high detail"
    assert prompt in body and f'data-tokens="{prompt_token_count(prompt)}"' in body
    assert "with the theme “stained glass”" in body


def test_the_preview_names_the_field_of_each_problem(client, creator):
    body = client.post(PREVIEW, _fields(prompt_template="{colour}", width="100")).content.decode()
    assert "<strong>Row text:</strong> Unknown placeholder {colour}" in body
    assert "<strong>Width:</strong> Width 100 is not a multiple of 8" in body
    # The same messages beside their fields (HTMX out-of-band swaps), and the fine fields emptied.
    assert '<ul class="errorlist" id="id_width_error" aria-live="polite" hx-swap-oob="true"><li>Width 100' in body
    assert '<ul class="errorlist" id="id_height_error" aria-live="polite" hx-swap-oob="true"></ul>' in body


def test_token_counts_match_transformers_clip_tokenizer(settings):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(f"{settings.IMAGINEER_SD15_CONFIG_DIR}/tokenizer")
    for text in [
        "a zodiac card, art deco, Taurus, earth element, high detail",
        "Карта таро, 星座, café &amp; crème!! (masterpiece:1.2) <lora:x:0.5>",
        "ace of spades, ornate border, 8k, hyper-detailed, don't",
    ]:
        assert prompt_token_count(text) == len(tokenizer(text, add_special_tokens=False).input_ids)
    # As the engine splits prompts: tags and brackets are not tokens, BREAK and every 75 tokens start a chunk.
    assert prompt_tokens("(fox:1.3) <lora:ink:0.5>") == prompt_tokens("fox")
    assert prompt_tokens("fox BREAK owl").chunks == 2 and prompt_tokens("fox BREAK owl").tokens == 2
    assert [prompt_tokens(", ".join(["fox"] * n)).chunks for n in (1, 38, 39, 76)] == [1, 1, 2, 3]


def test_only_the_owner_or_a_curator_edits_and_built_ins_are_read_only(client, creator):
    mine = BatchTemplateFactory(created_by=creator)
    theirs = BatchTemplateFactory(created_by=UserFactory(role="creator"))
    builtin = BatchTemplateFactory(is_builtin=True, name="Tarot")
    assert client.get(reverse("generation:template-edit", args=[mine.slug])).status_code == 200
    assert client.get(reverse("generation:template-edit", args=[theirs.slug])).status_code == 403
    refused = client.get(reverse("generation:template-edit", args=[builtin.slug]))
    assert refused.status_code == 403
    assert "duplicate this one and change the copy" in refused.content.decode()
    response = client.post(reverse("generation:template-edit", args=[mine.slug]), _fields(name="Renamed"))
    mine.refresh_from_db()
    assert response.status_code == 302 and mine.name == "Renamed" and mine.columns == ["sign", "element"]
    curator = UserFactory(role="curator")
    client.force_login(curator)
    assert client.get(reverse("generation:template-edit", args=[theirs.slug])).status_code == 200


def test_duplicating_a_built_in_gives_an_editable_copy_with_its_stack(client, creator):
    builtin = BatchTemplateFactory(is_builtin=True, name="Tarot")
    BatchTemplateLoraFactory(template=builtin, lora=LoraFactory(name="ink"), weight=Decimal("0.5"))
    detail = client.get(reverse("generation:template-detail", args=[builtin.slug])).content.decode()
    assert "Built in: read-only here." in detail and "Duplicate" in detail
    response = client.post(reverse("generation:template-duplicate", args=[builtin.slug]))
    copy = BatchTemplate.objects.get(name="Tarot (copy)")
    assert response["Location"] == reverse("generation:template-edit", args=[copy.slug])
    assert copy.created_by == creator and not copy.is_builtin and copy.csv_data == builtin.csv_data
    assert [(e.lora.name, e.weight) for e in copy.lora_stack.all()] == [("ink", Decimal("0.50"))]
    client.post(reverse("generation:template-duplicate", args=[builtin.slug]))
    assert BatchTemplate.objects.filter(name="Tarot (copy) (2)").exists()


def test_editor_query_count_does_not_grow_with_the_library(client, creator):
    LoraFactory()
    with CaptureQueriesContext(connection) as few:
        assert client.get(NEW).status_code == 200
    for _ in range(6):
        LoraFactory()
    with CaptureQueriesContext(connection) as many:
        client.get(NEW)
    assert len(many) == len(few)


# --- the LoRA library -------------------------------------------------------------------------


def test_lora_page_lists_base_rank_size_triggers_source_and_templates(client, creator):
    lora = LoraFactory(name="inkwash", trigger_words="ink, wash", file_size=2048, alpha=8.0)
    BatchTemplateLoraFactory(template=BatchTemplateFactory(name="Zodiac mini"), lora=lora)
    body = client.get(reverse("generation:lora-list")).content.decode()
    for text in ("inkwash", "SD 1.x", "2.0\xa0KB", ">ink<", ">wash<", "Zodiac mini", "8.0"):
        assert text in body


def _made_with(lora):
    from generation.models import GenerationJob
    from imagineer.tests.factories import ImageFactory

    image = ImageFactory.create()
    stack = [{"id": lora.pk, "name": lora.name, "sha256": lora.sha256, "weight": "0.8"}]
    GenerationJob.objects.create(
        prompt="x", width=64, height=64, steps=2, guidance_scale=7, seed=1, result_image=image, lora_stack=stack
    )
    return image


def test_lora_page_query_count_does_not_grow_with_the_library(client, creator):
    BatchTemplateLoraFactory(lora=LoraFactory())
    shown = _made_with(LoraFactory())
    assert (
        reverse("albums:image-thumbnail", args=[shown.pk])
        in client.get(reverse("generation:lora-list")).content.decode()
    )
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("generation:lora-list"))
    for _ in range(6):
        BatchTemplateLoraFactory(lora=LoraFactory(created_by=creator))
        _made_with(LoraFactory())
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("generation:lora-list"))
    assert len(many) == len(few)


def test_lora_upload_refusals_name_the_file_field(client, creator):
    pickle = client.post(reverse("generation:lora-upload"), {"file": SimpleUploadedFile("x.ckpt", b"\x80\x04")})
    assert pickle.status_code == 400 and "file" in pickle.context["upload_form"].errors
    assert "pickle" in " ".join(pickle.context["upload_form"].errors["file"]).lower()
    ok = client.post(
        reverse("generation:lora-upload"),
        {"file": SimpleUploadedFile("card_fronts.safetensors", safetensors_bytes(SD15_TENSORS))},
    )
    lora = Lora.objects.get()
    assert ok.status_code == 302 and lora.name == "card fronts" and lora.created_by == creator
    again = client.post(
        reverse("generation:lora-upload"),
        {"file": SimpleUploadedFile("again.safetensors", safetensors_bytes(SD15_TENSORS))},
    )
    assert "already in the library as 'card fronts'" in " ".join(again.context["upload_form"].errors["file"])


def test_lora_edit_and_delete_when_unused(client, creator):
    upload = SimpleUploadedFile("xl.safetensors", safetensors_bytes(SDXL_TENSORS))
    client.post(reverse("generation:lora-upload"), {"file": upload})
    lora = Lora.objects.get()
    LoraFactory(name="taken")
    url = reverse("generation:lora-detail", args=[lora.pk])
    page = client.get(url).content.decode()
    assert "made for SDXL but the loaded model is SD 1.x" in page
    clash = client.post(url, {"name": "taken", "default_weight": "1"})
    assert clash.status_code == 400 and "A LoRA named 'taken' already exists" in " ".join(
        clash.context["form"].errors["name"]
    )
    bad = client.post(url, {"name": "xl", "default_weight": "9"})
    assert bad.status_code == 400 and "default_weight" in bad.context["form"].errors
    saved = client.post(url, {"name": "xl", "trigger_words": " a,, b ", "default_weight": "0.6", "description": "d"})
    lora.refresh_from_db()
    assert saved.status_code == 302 and (lora.name, lora.trigger_words, lora.default_weight) == (
        "xl",
        "a, b",
        Decimal("0.60"),
    )
    template = BatchTemplateFactory(name="Uses it")
    BatchTemplateLoraFactory(template=template, lora=lora)
    refused = client.post(reverse("generation:lora-delete", args=[lora.pk]), follow=True)
    assert "is used by template Uses it" in refused.content.decode() and Lora.objects.filter(pk=lora.pk).exists()
    template.delete()
    client.post(reverse("generation:lora-delete", args=[lora.pk]))
    assert not Lora.objects.filter(pk=lora.pk).exists()


def test_another_creator_can_see_but_not_change_a_lora(client, creator):
    lora = LoraFactory(created_by=UserFactory(role="creator"))
    page = client.get(reverse("generation:lora-detail", args=[lora.pk])).content.decode()
    assert "Delete this LoRA" not in page and 'name="trigger_words"' not in page
    assert client.post(reverse("generation:lora-delete", args=[lora.pk])).status_code == 403


def test_generate_page_picker_offers_trigger_words_and_refuses_an_unfit_lora(client, creator):
    ok = LoraFactory(name="inkwash", trigger_words="inkwash style")
    xl = LoraFactory(name="xl-style", base=Lora.Base.SDXL)
    body = client.get(reverse("generation:generate")).content.decode()
    assert 'data-insert-word="inkwash style"' in body and "data-lora-search" in body
    response = client.post(
        reverse("generation:generate"),
        {"prompt": "a fox", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7, f"lora_{xl.pk}": "1"},
    )
    assert response.status_code == 400
    assert "made for SDXL" in " ".join(response.context["form"].errors[f"lora_{xl.pk}"])
    assert ok.pk


def test_a_loras_page_shows_images_made_with_it(client, creator):
    from albums.models import Image
    from generation.models import GenerationJob
    from imagineer.tests.factories import ImageFactory

    lora = LoraFactory(name="inkwash")
    made: Image = ImageFactory.create()
    GenerationJob.objects.create(
        prompt="a fox",
        width=64,
        height=64,
        steps=2,
        guidance_scale=7,
        seed=1,
        result_image=made,
        lora_stack=[{"id": lora.pk, "name": lora.name, "sha256": lora.sha256, "weight": "0.8"}],
    )
    ImageFactory.create()  # made without it
    body = client.get(reverse("generation:lora-detail", args=[lora.pk])).content.decode()
    assert body.count(reverse("albums:image-thumbnail", args=[made.pk])) == 1
    assert "No images made with this LoRA yet." not in body


def test_the_api_schema_describes_image_search(client, creator):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/images"]["get"]["parameters"]}
    assert {"q", "lora", "template", "seed"} <= set(parameters)
    assert "captions and tags" in parameters["q"]["description"]
