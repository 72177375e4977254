from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation.models import BatchTemplate
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, LoraFactory

pytestmark = pytest.mark.django_db

CSV = b'value,suit,visual_layout\nAce,Spades,"one pip, centred"\nTwo,Hearts,two pips\n'


def form_data(**overrides):
    data = {
        "name": "Mini deck",
        "slug": "mini-deck",
        "description": "",
        "base_prompt": "a playing card",
        "prompt_template": "the {value} of {suit}, {visual_layout}",
        "style_suffix": "sharp focus",
        "negative_prompt": "blurry",
        "example_theme": "gothic steampunk",
        "width": "512",
        "height": "720",
        "steps": "25",
        "guidance_scale": "7.5",
        "csv_text": "",
        "lora_stack-TOTAL_FORMS": "0",
        "lora_stack-INITIAL_FORMS": "0",
        "lora_stack-MIN_NUM_FORMS": "0",
        "lora_stack-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_admin_pages_render(staff_client):
    template = BatchTemplateFactory()
    BatchTemplateLoraFactory(template=template)
    for name in ["batchtemplate", "lora", "batchgenerationrun", "generationjob"]:
        assert staff_client.get(reverse(f"admin:generation_{name}_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:generation_batchtemplate_add")).status_code == 200
    response = staff_client.get(reverse("admin:generation_batchtemplate_change", args=[template.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<code>{sign}</code>" in body and "<code>{element}</code>" in body
    assert "a zodiac card, art deco, Aries, fire element, high detail" in body
    assert "sign,element\nAries,fire" in body


def test_csv_upload_creates_template_with_lora_stack(staff_client):
    lora = LoraFactory()
    data = form_data(
        csv_file=SimpleUploadedFile("deck.csv", CSV, content_type="text/csv"),
        **{
            "lora_stack-TOTAL_FORMS": "1",
            "lora_stack-0-position": "0",
            "lora_stack-0-lora": str(lora.pk),
            "lora_stack-0-weight": "0.6",
        },
    )
    response = staff_client.post(reverse("admin:generation_batchtemplate_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template = BatchTemplate.objects.get(slug="mini-deck")
    assert template.columns == ["value", "suit", "visual_layout"]
    assert template.csv_data[0] == {"value": "Ace", "suit": "Spades", "visual_layout": "one pip, centred"}
    assert list(template.lora_stack.values_list("lora", "weight")) == [(lora.pk, Decimal("0.60"))]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"csv_file": SimpleUploadedFile("d.csv", b"value,value\nA,B\n")}, "appears twice"),
        ({"csv_file": SimpleUploadedFile("d.csv", b"value,suit\nA,B,C\n")}, "has 3 fields but the header has 2"),
        (
            {"csv_file": SimpleUploadedFile("d.csv", "value,suit,visual_layout\nAs,Pique,é\n".encode("latin-1"))},
            "not UTF-8",
        ),
        (
            {"csv_file": SimpleUploadedFile("d.csv", CSV), "prompt_template": "{value} of {colour}"},
            "Unknown placeholder {colour}",
        ),
        ({"csv_file": SimpleUploadedFile("d.csv", CSV), "width": "500"}, "not a multiple of 8"),
        ({}, "Upload a CSV file or write the rows"),
        (
            {
                "csv_file": SimpleUploadedFile("d.csv", CSV),
                "lora_stack-TOTAL_FORMS": "1",
                "lora_stack-0-position": "0",
                "lora_stack-0-lora": "LORA",
                "lora_stack-0-weight": "2.5",
            },
            "less than or equal to 2",
        ),
    ],
)
def test_bad_input_shows_a_clear_error_and_saves_nothing(staff_client, overrides, fragment):
    if overrides.get("lora_stack-0-lora") == "LORA":
        overrides["lora_stack-0-lora"] = str(LoraFactory().pk)
    response = staff_client.post(reverse("admin:generation_batchtemplate_add"), form_data(**overrides))
    assert response.status_code == 200
    assert fragment in response.content.decode()
    assert not BatchTemplate.objects.exists()


def test_rows_can_be_edited_as_csv_text(staff_client):
    template = BatchTemplateFactory()
    data = form_data(
        name=template.name,
        slug=template.slug,
        prompt_template="{sign} ({element})",
        csv_text="sign,element\nLeo,fire\n",
        width="64",
        height="64",
    )
    response = staff_client.post(reverse("admin:generation_batchtemplate_change", args=[template.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template.refresh_from_db()
    assert template.csv_data == [{"sign": "Leo", "element": "fire"}]


def test_non_staff_cannot_use_the_admin(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:generation_batchtemplate_changelist"))
    assert response.status_code == 302
