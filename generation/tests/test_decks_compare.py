"""A card's takes side by side (choosing 2-6, the recipe fields that differ marked, picking from
there), and a card refreshing itself while its takes are made."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import DeckSlot, GenerationJob
from generation.tests.decks_support import deck_build
from imagineer.tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def _compare(album, index: int = 0) -> str:
    return reverse("generation:deck-compare", args=[album.pk, index])


def _differing(body: str) -> list[str]:
    return re.findall(r'<tr class="differs"><th scope="row">([^<]+) <span', body)


def test_chosen_takes_are_side_by_side_with_their_differences_marked(client):
    owner = UserFactory(role="creator")
    client.force_login(owner)
    album = deck_build(slots=2, takes=4, owner=owner)
    first, second, third, _fourth = GenerationJob.objects.filter(slot__album=album, slot__index=0).order_by("id")
    GenerationJob.objects.filter(pk=third.pk).update(
        strength=0.4, init_image=first.result_image, steps=4, lora_stack=[{"name": "inkwash", "weight": "0.50"}]
    )
    deck = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert f'action="{_compare(album)}"' in deck and f'value="{third.pk}"' in deck

    response = client.get(_compare(album), {"take": [first.pk, third.pk]})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("data-take>") == 2 and "Take #1" in body and "Take #3" in body and "Take #2" not in body
    assert _differing(body) == ["Seed", "Denoising strength", "Varied from", "Steps", "LoRA weights"]
    assert "take #1" in body and "inkwash 0.50" in body and "?size=512" in body

    # Takes that differ only by seed: only the seed is marked.
    only_seed = client.get(_compare(album), {"take": [first.pk, second.pk]}).content.decode()
    assert _differing(only_seed) == ["Seed"]

    # None ticked: the card's first six finished takes (here all four).
    assert client.get(_compare(album)).content.decode().count("data-take>") == 4

    # Picking from the comparison comes back to it.
    here = f"{_compare(album)}?take={first.pk}&take={third.pk}"
    picked = client.post(
        reverse("generation:deck-pick", args=[album.pk, 0]), {"image": third.result_image_id, "next": here}
    )
    assert picked.status_code == 302 and picked["Location"] == here
    assert DeckSlot.objects.get(album=album, index=0).pick_id == third.result_image_id
    again = client.get(here).content.decode()
    assert 'aria-pressed="true">Picked' in again and again.index("Take #3") < again.index("Picked</button>")


@pytest.mark.parametrize(
    ("takes", "message"),
    [
        ("one", "compare 2 to 6"),
        ("other card", "some of those asked for are not"),
        ("not a number", "some of those asked for are not"),
        ("seven", "compare 2 to 6"),
    ],
)
def test_bad_choices_are_a_400_naming_the_take(client, takes, message):
    owner = UserFactory(role="creator")
    client.force_login(owner)
    album = deck_build(slots=2, takes=7, owner=owner)
    own = list(
        GenerationJob.objects.filter(slot__album=album, slot__index=0).order_by("id").values_list("pk", flat=True)
    )
    other = GenerationJob.objects.filter(slot__album=album, slot__index=1).first().pk
    chosen = {"one": own[:1], "other card": [own[0], other], "not a number": [own[0], "x"], "seven": own}[takes]
    response = client.get(_compare(album), {"take": chosen})
    assert response.status_code == 400
    assert "take: " in response.content.decode() and message in response.content.decode()
    assert "data-take>" not in response.content.decode()


def test_viewers_compare_without_pick_buttons_and_queries_do_not_grow_with_takes(client):
    owner = UserFactory(role="creator")
    album = deck_build(slots=1, takes=6, owner=owner)
    ids = list(GenerationJob.objects.filter(slot__album=album).order_by("id").values_list("pk", flat=True))
    client.force_login(UserFactory(role="viewer"))
    with CaptureQueriesContext(connection) as two:
        body = client.get(_compare(album), {"take": ids[:2]}).content.decode()
    assert "data-pick" not in body and body.count("data-take>") == 2
    with CaptureQueriesContext(connection) as six:
        body = client.get(_compare(album), {"take": ids}).content.decode()
    assert body.count("data-take>") == 6
    assert len(two) == len(six), [query["sql"] for query in six]
    client.logout()
    assert client.get(_compare(album), {"take": ids[:2]}).status_code == 302


def test_a_card_with_takes_in_progress_refreshes_itself_in_constant_queries(client):
    owner = UserFactory(role="creator")
    client.force_login(owner)
    album = deck_build(slots=3, takes=2, owner=owner)
    card_url = reverse("generation:deck-card", args=[album.pk, 1])
    page = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert "hx-get" not in page.split('id="card-1"')[1].split("</li>\n  <li")[0]
    making = GenerationJob.objects.filter(slot__album=album, slot__index=1).first()
    making.pk, making.result_image, making.status, making.seed = None, None, GenerationJob.Status.RUNNING, 77
    making.save()
    page = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert f'hx-get="{card_url}" hx-trigger="every 3s"' in page and "data-refresh" not in page

    with CaptureQueriesContext(connection) as few:
        running = client.get(card_url).content.decode()
    assert running.count("data-take>") == 3 and "running 0/2" in running and 'hx-get="' in running
    assert running.lstrip().startswith('<li class="deck-card" id="card-2"')
    done = GenerationJob.Status.SUCCEEDED
    GenerationJob.objects.filter(pk=making.pk).update(
        status=done, result_image=ImageFactory.create(width=64, height=64)
    )
    for seed in range(4):
        GenerationJob.objects.create(
            slot=making.slot,
            album=album,
            prompt="a card",
            width=64,
            height=64,
            steps=2,
            guidance_scale=7,
            seed=seed,
            status=done,
            result_image=ImageFactory.create(width=64, height=64),
        )
    with CaptureQueriesContext(connection) as many:
        body = client.get(card_url).content.decode()
    assert body.count("data-take>") == 7 and "seed 77" in body and "hx-get" not in body
    assert len(few) == len(many), [query["sql"] for query in many]
    assert client.get(reverse("generation:deck-card", args=[album.pk, 9])).status_code == 404
