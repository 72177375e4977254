"""Decks without a worker: titles, try first and complete, takes and picks, the deck page, the zip."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import BatchGenerationRun, DeckSlot, GenerationJob
from generation.services.decks import run_complete, slot_pick, title_file_stem, title_render
from generation.services.runs import run_start
from generation.tests.decks_support import deck_build
from imagineer.errors import ApplicationError
from imagineer.tests.factories import BatchTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(client):
    user = UserFactory(role="creator")
    client.force_login(user)
    return user


def test_titles_follow_the_title_template_and_file_names_keep_every_script():
    row = {"value": "Ace", "suit": "Spades", "number": "0", "name": "The Fool"}
    assert title_render("{value} of {suit}", row) == "Ace of Spades"
    assert title_render("{number} {name}", row) == "0 The Fool"
    assert title_render("", {"sign": "Aries", "x": "1"}, ["sign", "x"]) == "Aries"
    assert title_file_stem("Ace of Spades") == "ace-of-spades"
    assert title_file_stem("牡羊座 (おひつじ座)") == "牡羊座-おひつじ座"
    assert title_file_stem("الحمل") == "الحمل"
    assert title_file_stem("♈") == ""


def test_try_first_makes_chosen_rows_into_a_full_deck_and_complete_fills_the_rest(creator):
    template = BatchTemplateFactory(title_template="{sign} ({element})")
    run = run_start(template=template, theme="ink", first=2, created_by=creator)
    slots = list(DeckSlot.objects.filter(album=run.album).order_by("index"))
    assert [slot.title for slot in slots] == ["Aries (fire)", "Taurus (earth)", "Gemini (air)"]
    assert run.total_items == 2
    assert sorted(run.jobs.values_list("row_index", flat=True)) == [0, 1]
    assert all(job.slot.index == job.row_index for job in run.jobs.select_related("slot"))
    run = run_complete(run=run, created_by=creator)
    assert run.total_items == 3
    assert sorted(run.jobs.values_list("row_index", flat=True)) == [0, 1, 2]
    with pytest.raises(ApplicationError, match="already has every row"):
        run_complete(run=run)


def test_try_first_rows_and_sample_are_checked(creator):
    template = BatchTemplateFactory()
    run = run_start(template=template, theme="", rows=[2], created_by=creator)
    assert list(run.jobs.values_list("row_index", flat=True)) == [2]
    run = run_start(template=template, theme="", sample=2, created_by=creator)
    assert run.jobs.count() == 2
    for kwargs, field in (({"rows": [5]}, "rows"), ({"first": 0}, "first"), ({"sample": 4}, "sample")):
        with pytest.raises(ApplicationError) as caught:
            run_start(template=template, theme="", created_by=creator, **kwargs)
        assert field in caught.value.fields


def test_increment_seeds_continue_when_the_deck_is_completed(creator):
    template = BatchTemplateFactory()
    run = run_start(template=template, theme="", rows=[0], overrides={"seed_policy": "increment"}, created_by=creator)
    first = run.jobs.get().seed
    run_complete(run=run)
    seeds = dict(run.jobs.values_list("row_index", "seed"))
    assert seeds == {0: first, 1: (first + 1) % 2**32, 2: (first + 2) % 2**32}


def test_the_deck_page_shows_picks_in_slot_order_and_its_queries_do_not_grow(client, creator):
    small = deck_build(slots=12, takes=3, owner=creator)
    large = deck_build(slots=54, takes=3, owner=creator)
    with CaptureQueriesContext(connection) as few:
        response = client.get(reverse("albums:album-detail", args=[small.pk]))
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as many:
        body = client.get(reverse("albums:album-detail", args=[large.pk])).content.decode()
    assert len(few) == len(many), [query["sql"] for query in many]
    assert body.index("1. Aries 1") < body.index("2. Taurus 2") < body.index("54. Cancer 54")
    assert body.count("data-take>") == 54 * 3
    assert "Download picks (zip)" in body


def test_picks_choose_the_zip_and_a_take_from_another_card_is_refused(client, creator):
    album = deck_build(slots=3, takes=2, owner=creator, titles=["Ace of Spades", "牡羊座", "♈"])
    slots = list(DeckSlot.objects.filter(album=album).order_by("index"))
    second_take = GenerationJob.objects.filter(slot=slots[1]).order_by("id")[1].result_image
    response = client.post(reverse("generation:deck-pick", args=[album.pk, 1]), {"image": second_take.pk}, follow=True)
    assert response.status_code == 200
    slots[1].refresh_from_db()
    assert slots[1].pick == second_take
    other = GenerationJob.objects.filter(slot=slots[0]).first().result_image
    with pytest.raises(ApplicationError) as caught:
        slot_pick(slot=slots[1], image=other)
    assert "image" in caught.value.fields
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(reverse("albums:album-download", args=[album.pk])))))
    assert archive.namelist() == ["01-ace-of-spades.png", "02-牡羊座.png", "03-card-3.png"]
    assert archive.read("02-牡羊座.png") == second_take.file.read()
    everything = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(reverse("albums:album-download", args=[album.pk]) + "?takes=all")))
    )
    assert len(everything.namelist()) == 6 and everything.namelist()[0] == "01-ace-of-spades-1.png"


def test_only_the_owner_or_a_curator_changes_a_deck(client):
    owner = UserFactory(role="creator")
    album = deck_build(slots=2, takes=1, owner=owner)
    take = GenerationJob.objects.filter(slot__album=album, slot__index=0).get().result_image
    for role in ("viewer", "creator"):
        client.force_login(UserFactory(role=role))
        response = client.post(reverse("generation:deck-pick", args=[album.pk, 0]), {"image": take.pk})
        assert response.status_code == 403
        assert client.get(reverse("albums:album-detail", args=[album.pk])).status_code == 200
    client.force_login(UserFactory(role="curator"))
    assert client.post(reverse("generation:deck-takes", args=[album.pk]), {"all": "1", "count": "2"}).status_code == 302
    assert GenerationJob.objects.filter(slot__album=album, status="queued").count() == 4


def test_more_takes_and_vary_check_their_input(client, creator):
    album = deck_build(slots=2, takes=1, owner=creator)
    take = GenerationJob.objects.get(slot__album=album, slot__index=0)
    from generation.services.decks import slot_vary, slots_takes_add

    slot0, slot1 = DeckSlot.objects.filter(album=album).order_by("index")
    for count in (0, 17, "3"):
        with pytest.raises(ApplicationError, match="from 1 to 16") as caught:
            slots_takes_add(slots=[slot0], count=count, created_by=creator)
        assert "count" in caught.value.fields
    for strength in (0, 1.5, "x", -0.2):
        with pytest.raises(ApplicationError, match=r"\(0, 1\]") as caught:
            slot_vary(slot=slot0, image=take.result_image, strength=strength, created_by=creator)
        assert "strength" in caught.value.fields
    with pytest.raises(ApplicationError, match="repaints nothing"):
        slot_vary(slot=slot0, image=take.result_image, strength=0.2, created_by=creator)
    with pytest.raises(ApplicationError, match="not a take of card") as caught:
        slot_vary(slot=slot1, image=take.result_image, strength=0.5, created_by=creator)
    assert "image" in caught.value.fields
    jobs = slot_vary(slot=slot0, image=take.result_image, strength=0.5, created_by=creator)
    assert jobs[0].seed == take.seed and jobs[0].init_image == take.result_image and jobs[0].strength == 0.5
    assert jobs[0].slot == slot0 and jobs[0].run is None
    edited = slots_takes_add(slots=[slot1], count=2, prompt_edit="a golden ram", created_by=creator)
    assert len(edited) == 2 and all("a golden ram" in job.prompt for job in edited)
    assert edited[0].seed != edited[1].seed
    assert BatchGenerationRun.objects.count() == 1


def test_the_admin_lists_slots_with_their_pick_and_shows_takes(client):
    curator = UserFactory(role="curator", is_staff=True)
    client.force_login(curator)
    album = deck_build(slots=3, takes=2, owner=curator)
    listing = client.get(reverse("admin:generation_deckslot_changelist"))
    assert listing.status_code == 200
    assert "Aries 1" in listing.content.decode() and "first take" in listing.content.decode()
    slot = DeckSlot.objects.get(album=album, index=0)
    page = client.get(reverse("admin:generation_deckslot_change", args=[slot.pk]))
    assert page.status_code == 200 and page.content.decode().count("take") >= 2


def test_the_admin_refuses_a_title_template_naming_an_unknown_column():
    from generation.admin import BatchTemplateForm

    form = BatchTemplateForm(
        data={
            "name": "Mini",
            "slug": "mini",
            "prompt_template": "{sign}",
            "title_template": "{planet}",
            "csv_text": "sign\nAries\n",
            "width": 64,
            "height": 64,
            "steps": 2,
            "guidance_scale": 7,
        }
    )
    assert not form.is_valid()
    assert "planet" in str(form.errors["title_template"])


def test_regenerating_a_take_from_its_image_page_adds_a_take_to_its_card(client, creator):
    album = deck_build(slots=2, takes=1, owner=creator)
    take = GenerationJob.objects.get(slot__album=album, slot__index=1)
    response = client.post(reverse("generation:image-regenerate", args=[take.result_image_id]), {"seed": "new"})
    assert response.status_code == 302 and response["Location"].endswith(f"/albums/{album.pk}/#card-2")
    again = GenerationJob.objects.filter(slot=take.slot).exclude(pk=take.pk).get()
    assert (again.prompt, again.steps, again.album_id, again.run_id) == (take.prompt, take.steps, album.pk, None)
    same = client.post(reverse("generation:image-regenerate", args=[take.result_image_id]), {"seed": "same"})
    assert same.status_code == 302
    assert GenerationJob.objects.filter(slot=take.slot, seed=take.seed).count() == 2
    client.force_login(UserFactory(role="creator"))  # not the deck's owner: a job of their own, as before
    client.post(reverse("generation:image-regenerate", args=[take.result_image_id]), {"seed": "new"})
    assert GenerationJob.objects.filter(slot=take.slot).count() == 3


def test_an_nsfw_pick_is_blurred_on_the_deck_page(client, creator):
    album = deck_build(slots=2, takes=1, owner=creator)
    from albums.models import Image

    Image.objects.filter(generation_job__slot__album=album, generation_job__slot__index=1).update(is_nsfw=True)
    body = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert body.count('class="deck-pick tile nsfw"') == 1 and "Reveal NSFW image Taurus 2" in body


def test_a_run_cancelled_before_any_image_marks_its_album_and_resumes_from_the_run_page(client, creator):
    run = run_start(template=BatchTemplateFactory(), theme="ink", created_by=creator)
    page = client.get(reverse("generation:run-detail", args=[run.pk])).content.decode()
    assert 'hx-confirm="Cancel this run?' in page
    response = client.post(reverse("generation:run-cancel", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-status="cancelled"' in response.content.decode()
    run.refresh_from_db()
    assert run.status == "cancelled" and run.album.name.endswith("(cancelled before any image)")
    home = client.get(reverse("albums:album-list")).content.decode()
    assert "(cancelled before any image)" in home
    page = client.get(reverse("generation:run-detail", args=[run.pk])).content.decode()
    assert "Resume (3 cancelled)" in page
    client.post(reverse("generation:run-retry", args=[run.pk]))
    run.refresh_from_db()
    assert run.status in ("queued", "running") and not run.album.name.endswith("(cancelled before any image)")


def test_albums_are_listed_newest_first(client, creator):
    from albums.models import Album

    older = Album.objects.create(name="Older", slug="older")
    newer = Album.objects.create(name="Newer", slug="newer")
    body = client.get(reverse("albums:album-list")).content.decode()
    assert body.index(newer.name) < body.index(older.name)
