from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError

from generation.models import BatchTemplate, BatchTemplateLora
from generation.services.builtin import builtin_template_specs, builtin_templates_load
from generation.services.templates import (
    LoraStackEntry,
    lora_weight_parse,
    size_validate,
    template_preview,
    template_save,
)
from imagineer.errors import ApplicationError
from imagineer.tests.factories import BatchTemplateFactory, LoraFactory

pytestmark = pytest.mark.django_db

ROWS = [{"sign": "Aries", "element": "fire"}, {"sign": "Taurus", "element": "earth"}]


def save(**overrides) -> BatchTemplate:
    arguments: dict[str, Any] = {
        "name": "Zodiac mini",
        "prompt_template": "{sign}, {element} element",
        "columns": ["sign", "element"],
        "rows": ROWS,
        "base_prompt": "a zodiac card",
        "example_theme": "art deco",
        "width": 512,
        "height": 720,
    }
    arguments.update(overrides)
    return template_save(**arguments)


def test_template_save_stores_rows_columns_and_lora_stack_in_order():
    first, second = LoraFactory(), LoraFactory()
    template = save(lora_stack=[LoraStackEntry(second, Decimal("0.3")), LoraStackEntry(first, Decimal("-1.5"))])
    template.refresh_from_db()
    assert template.slug == "zodiac-mini"
    assert template.columns == ["sign", "element"]
    assert template.csv_data == ROWS
    assert [(entry.lora, entry.weight) for entry in template.lora_stack.all()] == [
        (second, Decimal("0.30")),
        (first, Decimal("-1.50")),
    ]
    assert template_preview(template) == [
        (1, "a zodiac card, art deco, Aries, fire element"),
        (2, "a zodiac card, art deco, Taurus, earth element"),
    ]


@pytest.mark.parametrize(
    ("width", "height", "field", "fragment"),
    [
        (500, 512, "width", "500 is not a multiple of 8; use 496 or 504"),
        (512, 30, "height", "between 64 and 2048"),
        (4096, 512, "width", "between 64 and 2048"),
    ],
)
def test_bad_sizes_are_refused_and_nothing_is_saved(width, height, field, fragment):
    with pytest.raises(ApplicationError) as info:
        save(width=width, height=height)
    assert fragment in info.value.fields[field][0]
    assert not BatchTemplate.objects.exists()


def test_unknown_placeholder_saves_nothing():
    with pytest.raises(ApplicationError, match=r"Unknown placeholder \{suit\}"):
        save(prompt_template="{sign} of {suit}")
    assert not BatchTemplate.objects.exists()


def test_size_validate_rejects_non_integers():
    with pytest.raises(ApplicationError) as info:
        size_validate(width="512", height=True)
    assert set(info.value.fields) == {"width", "height"}


@pytest.mark.parametrize("value", ["2.01", "-2.5", "nan", "abc", "inf"])
def test_lora_weight_outside_range_or_not_a_number(value):
    with pytest.raises(ApplicationError):
        lora_weight_parse(value)


def test_lora_weight_within_range_is_quantised():
    assert lora_weight_parse("0.555") == Decimal("0.56")
    assert lora_weight_parse(-2) == Decimal("-2.00")


def test_database_refuses_out_of_range_lora_weight():
    template, lora = BatchTemplateFactory(), LoraFactory()
    with pytest.raises(IntegrityError):
        BatchTemplateLora.objects.create(template=template, lora=lora, weight=Decimal("2.50"))


def test_builtin_templates_have_the_promised_rows_and_sizes():
    results = builtin_templates_load()
    by_slug = {result.template.slug: result.template for result in results}
    assert {slug: (t.row_count, t.width, t.height) for slug, t in by_slug.items()} == {
        "card_deck": (54, 512, 720),
        "tarot_deck": (22, 512, 896),
        "zodiac": (12, 512, 512),
    }
    tarot = by_slug["tarot_deck"]
    assert tarot.csv_data[0]["name"] == "The Fool" and tarot.csv_data[-1]["name"] == "The World"
    deck = by_slug["card_deck"]
    assert len({(row["value"], row["suit"]) for row in deck.csv_data}) == 54
    for template in by_slug.values():
        prompts = [prompt for _, prompt in template_preview(template, limit=None)]
        assert len(set(prompts)) == template.row_count
        assert max(map(len, prompts)) <= 2000


def test_card_rows_say_how_many_pips_and_where():
    deck = {(row["value"], row["suit"]): row for row in builtin_templates_load()[0].template.csv_data}
    assert "Five" in deck[("Five", "Hearts")]["visual_layout"] or "5" in deck[("Five", "Hearts")]["visual_layout"]
    assert "single" in deck[("Ace", "Spades")]["visual_layout"].lower()


def test_loading_builtin_templates_twice_is_idempotent():
    from django.core.management import call_command

    call_command("load_builtin_templates", verbosity=0)
    first = {t.slug: (t.pk, t.updated_at) for t in BatchTemplate.objects.all()}
    call_command("load_builtin_templates", verbosity=0)
    assert BatchTemplate.objects.count() == 3
    assert {t.slug: (t.pk, t.updated_at) for t in BatchTemplate.objects.all()} == first
    assert sorted(BatchTemplate.objects.values_list("slug", flat=True)) == sorted(
        s["slug"] for s in builtin_template_specs()
    )


def test_reloading_keeps_a_curated_lora_stack():
    from django.core.management import call_command

    call_command("load_builtin_templates", verbosity=0)
    zodiac = BatchTemplate.objects.get(slug="zodiac")
    lora = LoraFactory()
    BatchTemplateLora.objects.create(template=zodiac, lora=lora, weight=Decimal("0.5"))
    BatchTemplate.objects.filter(pk=zodiac.pk).update(description="edited by hand")
    call_command("load_builtin_templates", verbosity=0)
    zodiac.refresh_from_db()
    assert zodiac.description != "edited by hand"
    assert list(zodiac.lora_stack.values_list("lora", "weight")) == [(lora.pk, Decimal("0.50"))]
