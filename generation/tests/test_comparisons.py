"""Deck comparisons without a worker: start, same seeds, the board (constant queries), picks across decks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from albums.models import AlbumImage
from generation.models import BatchGenerationRun, DeckComparison, DeckSlot, GenerationJob
from generation.services.comparisons import comparison_start
from generation.services.decks import slots_takes_add
from generation.services.runs import run_start
from generation.tests.decks_support import deck_build
from imagineer.errors import ApplicationError
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, LoraFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    template = BatchTemplateFactory()
    BatchTemplateLoraFactory(template=template, lora=LoraFactory(name="inkwash"), weight=Decimal("0.6"))
    return template


def _comparison_of_decks(owner, slots: int, takes: int) -> DeckComparison:
    """A comparison over two finished decks (built in the database)."""
    template = BatchTemplateFactory.create()
    comparison = DeckComparison.objects.create(
        name=f"board {slots}", template=template, variants=[{"theme": "a"}, {"theme": "b"}], created_by=owner
    )
    for variant in range(2):
        album = deck_build(slots=slots, takes=takes, owner=owner)
        BatchGenerationRun.objects.filter(album=album).update(comparison=comparison, variant=variant, template=template)
    return comparison


def test_variants_share_seeds_and_differ_only_in_what_they_name(template):
    owner = UserFactory(role="creator")
    comparison = comparison_start(
        template=template,
        variants=[{"lora_weights": {"inkwash": "0.2"}}, {"lora_weights": {"inkwash": "1.0"}}],
        theme="ink",
        first=2,
        created_by=owner,
    )
    runs = list(comparison.runs.order_by("variant"))
    assert [run.variant for run in runs] == [0, 1] and all(run.total_items == 2 for run in runs)
    first, second = (list(run.jobs.order_by("row_index")) for run in runs)
    assert [job.seed for job in first] == [job.seed for job in second]
    assert [job.prompt for job in first] == [job.prompt for job in second]
    assert [job.lora_stack[0]["weight"] for job in first + second] == ["0.20", "0.20", "1.00", "1.00"]
    assert "LoRA inkwash 0.2" in runs[0].album.name


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{}], "2 to 4 variants"),
        ([{}] * 5, "2 to 4 variants"),
        ([{}, {"width": 128}], "cannot vary"),
        ([{}, {"lora_weights": {"nope": "1"}}], "not in this template"),
    ],
)
def test_bad_variant_sets_are_refused_and_write_nothing(template, variants, message):
    with pytest.raises(ApplicationError, match=message) as caught:
        comparison_start(template=template, variants=variants, created_by=UserFactory(role="creator"))
    assert set(caught.value.fields) & {"variants", "lora_weights"}
    assert not DeckComparison.objects.exists() and not BatchGenerationRun.objects.exists()


def test_the_board_shows_cards_by_variants_in_constant_queries(client):
    owner = UserFactory(role="creator")
    client.force_login(owner)
    small, large = _comparison_of_decks(owner, 12, 3), _comparison_of_decks(owner, 54, 3)
    with CaptureQueriesContext(connection) as few:
        response = client.get(reverse("generation:comparison-detail", args=[small.pk]))
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as many:
        body = client.get(reverse("generation:comparison-detail", args=[large.pk])).content.decode()
    assert len(few) == len(many), [query["sql"] for query in many]
    assert body.count('name="pick"') == 54 * 3 * 2
    assert "A: theme: a" in body and "B: theme: b" in body
    api = client.get(f"/api/comparisons/{large.pk}")
    assert api.status_code == 200 and len(api.json()["cards"]) == 54
    assert [cell["album"] for cell in api.json()["cards"][0]["cells"]] == [
        column["album"] for column in api.json()["variants"]
    ]


def test_a_cell_is_picked_into_another_deck_of_the_comparison(client):
    owner = UserFactory(role="creator")
    client.force_login(owner)
    comparison = _comparison_of_decks(owner, 2, 2)
    first, second = (run.album for run in comparison.runs.order_by("variant").select_related("album"))
    image = GenerationJob.objects.filter(slot__album=second, slot__index=1).order_by("id")[1].result_image
    response = client.post(
        reverse("generation:comparison-pick", args=[comparison.pk]), {"into": first.pk, "pick": f"1:{image.pk}"}
    )
    assert response.status_code == 302
    assert DeckSlot.objects.get(album=first, index=1).pick == image
    assert AlbumImage.objects.filter(album=first, image=image).exists()
    wrong_card = GenerationJob.objects.filter(slot__album=second, slot__index=0).first().result_image
    client.post(
        reverse("generation:comparison-pick", args=[comparison.pk]), {"into": first.pk, "pick": f"1:{wrong_card.pk}"}
    )
    assert DeckSlot.objects.get(album=first, index=1).pick == image
    client.force_login(UserFactory(role="creator"))
    refused = client.post(
        reverse("generation:comparison-pick", args=[comparison.pk]), {"into": first.pk, "pick": f"0:{image.pk}"}
    )
    assert refused.status_code == 403


def test_the_comparison_api_starts_and_refuses_bad_input(api_as, template):
    client = api_as("creator")
    started = client.post(
        "/api/comparisons",
        {"template": template.pk, "variants": [{"steps": 2}, {"steps": 3}], "first": 1},
        format="json",
    )
    assert started.status_code == 202, started.content
    assert [variant["differences"] for variant in started.json()["variants"]] == ["steps: 2", "steps: 3"]
    bad = client.post("/api/comparisons", {"template": template.pk, "variants": [{}]}, format="json")
    assert bad.status_code == 400 and "variants" in bad.json()["error"]["fields"]
    missing = client.post("/api/comparisons", {"template": 99999, "variants": [{}, {}]}, format="json")
    assert missing.status_code == 400 and "template" in missing.json()["error"]["fields"]
    assert (
        api_as("viewer")
        .post("/api/comparisons", {"template": template.pk, "variants": [{}, {}]}, format="json")
        .status_code
        == 403
    )


def test_the_compare_page_starts_variants_from_the_form(client, template):
    client.force_login(UserFactory(role="creator"))
    page = client.get(reverse("generation:comparison-new", args=[template.slug]))
    assert page.status_code == 200 and "LoRA inkwash" in page.content.decode()
    response = client.post(
        reverse("generation:comparison-new", args=[template.slug]),
        {"theme": "ink", "first": "1", "lora_0_1": "0.3", "lora_0_2": "0.9"},
    )
    comparison = DeckComparison.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/comparisons/{comparison.pk}/")
    assert comparison.variants == [{"lora_weights": {"inkwash": "0.3"}}, {"lora_weights": {"inkwash": "0.9"}}]
    bad = client.post(reverse("generation:comparison-new", args=[template.slug]), {"first": "0"})
    assert bad.status_code == 400 and "First must be" in bad.content.decode()


def test_variants_differing_only_by_style_suffix_share_seeds_but_not_prompts(template):
    comparison = comparison_start(
        template=template,
        variants=[{"style_suffix": "ink wash"}, {"style_suffix": "oil on canvas"}],
        first=2,
        created_by=UserFactory(role="creator"),
    )
    first, second = (list(run.jobs.order_by("row_index")) for run in comparison.runs.order_by("variant"))
    assert [job.seed for job in first] == [job.seed for job in second]
    assert all(job.prompt.endswith(", ink wash") for job in first)
    assert all(job.prompt.endswith(", oil on canvas") for job in second)
    assert [job.prompt_parts["style_suffix"] for job in first + second] == ["ink wash"] * 2 + ["oil on canvas"] * 2
    runs = list(comparison.runs.order_by("variant"))
    assert [run.overrides["style_suffix"] for run in runs] == ["ink wash", "oil on canvas"]
    assert "style: ink wash" in runs[0].album.name
    # A take made later on a card keeps its run's suffix.
    slot = DeckSlot.objects.get(album=runs[1].album, index=0)
    assert slots_takes_add(slots=[slot], count=1, created_by=runs[1].created_by)[0].prompt == second[0].prompt


def test_a_style_suffix_override_is_checked_and_named(api_as, template, client):
    long = "x" * (settings.IMAGINEER_MAX_PROMPT_CHARS + 1)
    with pytest.raises(ApplicationError) as caught:
        run_start(template=template, theme="", overrides={"style_suffix": long})
    assert "style_suffix" in caught.value.fields
    with pytest.raises(ApplicationError) as caught:
        run_start(template=template, theme="", overrides={"style_suffix": 7})
    assert "style_suffix" in caught.value.fields
    api = api_as("creator")
    bad = api.post(f"/api/batch-templates/{template.pk}/generate", {"overrides": {"style_suffix": long}}, format="json")
    assert bad.status_code == 400 and "style_suffix" in str(bad.json()["error"]["fields"])
    bad_variant = api.post(
        "/api/comparisons",
        {"template": template.pk, "variants": [{"style_suffix": long}, {}]},
        format="json",
    )
    assert bad_variant.status_code == 400 and "style_suffix" in bad_variant.json()["error"]["fields"]
    assert not BatchGenerationRun.objects.exists()
    ok = api.post(
        f"/api/batch-templates/{template.pk}/generate",
        {"theme": "ink", "first": 1, "overrides": {"style_suffix": "gouache"}},
        format="json",
    )
    assert ok.status_code == 202, ok.content
    run = BatchGenerationRun.objects.get()
    assert run.overrides["style_suffix"] == "gouache" and run.jobs.get().prompt.endswith(", gouache")
    client.force_login(UserFactory(role="creator"))
    form = client.post(
        reverse("generation:comparison-new", args=[template.slug]), {"style_1": "gouache", "style_2": "charcoal"}
    )
    assert form.status_code == 302
    assert DeckComparison.objects.get().variants == [{"style_suffix": "gouache"}, {"style_suffix": "charcoal"}]
