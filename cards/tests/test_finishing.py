"""Finishing a deck from an album's picks and exporting it: services and management commands."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pikepdf
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from albums.models import AlbumImage, Image
from albums.services.files import media_path
from cards.models import FinishedCard
from cards.services.designs import design_create, design_update
from cards.services.finishing import EXPORT_FILES, deck_export, deck_finish
from cards.services.sources import album_card_sources
from imagineer.errors import ApplicationError

TITLE = "{value} of {suit}"


@pytest.fixture
def classic(card_deck_template):
    return design_create(template=card_deck_template, name="Classic", frame_width_mm=Decimal("1.5"))


def test_sources_follow_the_rows_and_list_rows_without_a_pick(card_deck_template, run_album):
    album = run_album(card_deck_template, rows=6, missing={2, 5})
    sources = album_card_sources(album=album, title_template=TITLE)
    assert [source.index for source in sources] == [1, 2, 3, 4, 5, 6]
    assert [source.title for source in sources][:3] == ["Ace of Spades", "Two of Spades", "Three of Spades"]
    assert [source.index for source in sources if source.image is None] == [2, 5]
    assert sources[0].row["suit"] == "Spades"
    # Without a title template, the row's first value.
    assert album_card_sources(album=album)[0].title == "Ace"


def test_finishing_makes_print_size_cards_for_picked_slots_and_lists_the_others(classic, card_deck_template, run_album):
    album = run_album(card_deck_template, rows=6, missing={2, 5})
    seen = []
    result = deck_finish(
        album=album, design=classic, title_template=TITLE, progress=lambda *args: seen.append(args), workers=2
    )
    assert [card.position for card in result.cards] == [1, 3, 4, 6]
    assert [source.index for source in result.missing] == [2, 5]
    assert result.failed == [] and result.rendered == 5 and result.reused == 0
    assert seen[0] == ("finish", 0, 5) and seen[-1] == ("finish", 5, 5)
    for finished in [*result.cards, result.back]:
        with PILImage.open(media_path(finished.image.file.name)) as image:
            assert image.size == (815, 1110)
            assert tuple(round(value) for value in image.info["dpi"]) == (300, 300)
        assert (finished.image.width, finished.image.height) == (815, 1110)
    first = result.cards[0]
    assert first.title == "Ace of Spades" and first.source_image.file.name.endswith("/01.png")
    assert first.image.recipe["finished_card"]["design"] == classic.pk
    assert result.back.side == FinishedCard.Side.BACK
    # Finished cards do not become picks of the deck they were made from.
    assert len(album_card_sources(album=album)) == 6


def test_unchanged_cards_are_kept_and_a_design_change_renders_them_again(
    classic, card_deck_template, run_album, django_capture_on_commit_callbacks
):
    album = run_album(card_deck_template, rows=3)
    first = deck_finish(album=album, design=classic, title_template=TITLE)
    again = deck_finish(album=album, design=classic, title_template=TITLE)
    assert (again.rendered, again.reused) == (0, 4)
    assert [card.image_id for card in again.cards] == [card.image_id for card in first.cards]
    old_files = [media_path(card.image.file.name) for card in first.cards]
    design_update(design=classic, frame_color="#aa0000")
    with django_capture_on_commit_callbacks(execute=True):
        changed = deck_finish(album=album, design=classic, title_template=TITLE)
    assert (changed.rendered, changed.reused) == (4, 0)
    assert FinishedCard.objects.filter(album=album, design=classic).count() == 4
    assert not Image.objects.filter(pk__in=[card.image_id for card in first.cards]).exists()
    with PILImage.open(media_path(changed.cards[0].image.file.name)) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (0xAA, 0, 0)
    assert not any(path.exists() for path in old_files)


def test_a_pick_removed_from_the_album_drops_its_finished_card(classic, card_deck_template, run_album):
    album = run_album(card_deck_template, rows=3)
    deck_finish(album=album, design=classic)
    AlbumImage.objects.filter(album=album, position=2).delete()
    result = deck_finish(album=album, design=classic)
    assert [source.index for source in result.missing] == [2]
    assert sorted(FinishedCard.objects.filter(album=album, side="front").values_list("position", flat=True)) == [1, 3]


def test_an_unreadable_pick_fails_that_card_only(classic, card_deck_template, run_album):
    album = run_album(card_deck_template, rows=3)
    broken = album_card_sources(album=album)[1].image
    media_path(broken.file.name).write_bytes(b"not a png any more")
    result = deck_finish(album=album, design=classic)
    assert [card.position for card in result.cards] == [1, 3]
    [(source, message)] = result.failed
    assert source.index == 2 and "cannot be read" in message


def test_export_writes_every_format(classic, card_deck_template, run_album, tmp_path):
    album = run_album(card_deck_template, rows=4, missing={3})
    result = deck_export(
        album=album, design=classic, formats=list(EXPORT_FILES), output_dir=tmp_path, title_template=TITLE, workers=2
    )
    assert set(result.files) == set(EXPORT_FILES)
    with zipfile.ZipFile(result.files["zip"]) as archive:
        assert archive.namelist() == [
            "001-ace-of-spades.png",
            "002-two-of-spades.png",
            "004-four-of-spades.png",
            "back.png",
        ]
    with zipfile.ZipFile(result.files["mpc"]) as archive:
        assert {PILImage.open(io.BytesIO(archive.read(name))).size for name in archive.namelist()} == {(816, 1110)}
    with pikepdf.open(result.files["drivethru"]) as pdf:
        assert len(pdf.pages) == 6
    for paper, width in (("pnp-a4", 595.28), ("pnp-letter", 612.0)):
        with pikepdf.open(result.files[paper]) as pdf:
            assert len(pdf.pages) == 2 and float(pdf.pages[0].MediaBox[2]) == pytest.approx(width, abs=0.01)
    with zipfile.ZipFile(result.files["tts"]) as archive:
        assert PILImage.open(io.BytesIO(archive.read("sheet-01.png"))).size == (4090, 3997)


def test_exports_refuse_what_they_cannot_make(card_deck_template, run_album):
    album = run_album(card_deck_template, rows=2, missing={1, 2})
    tarot = design_create(template=card_deck_template, name="Tall", size_preset="tarot")
    with pytest.raises(ApplicationError) as caught:
        deck_export(album=album, design=tarot, formats=["mpc"])
    assert "poker cards" in caught.value.fields["formats"][0]
    with pytest.raises(ApplicationError) as caught:
        deck_export(album=album, design=tarot, formats=["zip", "pdf"])
    assert "Unknown export pdf" in caught.value.fields["formats"][0]
    with pytest.raises(ApplicationError, match="nothing to export"):
        deck_export(album=album, design=tarot, formats=["zip"])


def test_finish_deck_command_reports_and_lists_missing(classic, card_deck_template, run_album, capsys):
    album = run_album(card_deck_template, rows=4, missing={4})
    call_command("finish_deck", album.slug, "--design", "Classic", "--title-template", TITLE, "--workers", "2")
    out, err = capsys.readouterr()
    assert "3 cards finished (4 rendered, 0 unchanged)" in out
    assert "1 without a pick, not finished: 4 Four of Spades" in out
    assert "finish: 100%" in err  # the tqdm bar
    assert FinishedCard.objects.filter(album=album).count() == 4


def test_finish_deck_command_fails_when_a_card_fails(classic, card_deck_template, run_album):
    album = run_album(card_deck_template, rows=2)
    media_path(album_card_sources(album=album)[0].image.file.name).write_bytes(b"broken")
    with pytest.raises(CommandError, match="1 cards could not be finished"):
        call_command("finish_deck", str(album.pk), "--design", str(classic.pk))
    with pytest.raises(CommandError, match="No album"):
        call_command("finish_deck", "no-such-album", "--design", "Classic")
    with pytest.raises(CommandError, match="No single card design"):
        call_command("finish_deck", album.slug, "--design", "Nope")


def test_export_deck_command_writes_files_with_progress(classic, card_deck_template, run_album, tmp_path, capsys):
    album = run_album(card_deck_template, rows=3)
    out_dir = tmp_path / "out"
    call_command(
        "export_deck", album.slug, "--design", "Classic", "--format", "zip,pnp-a4,tts", "--output", str(out_dir)
    )
    out, err = capsys.readouterr()
    assert "3 exports written." in out
    assert "pnp-a4: 100%" in err and "tts: 100%" in err
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "cards.zip",
        "print-and-play-a4.pdf",
        "tabletop-simulator.zip",
    ]
    with pytest.raises(CommandError, match="formats: Unknown export gif"):
        call_command("export_deck", album.slug, "--design", "Classic", "--format", "gif")


def test_a_deck_is_finished_from_its_picks_linked_to_slot_and_take(zodiac_template):
    from generation.models import DeckSlot, GenerationJob
    from generation.services.decks import slot_pick
    from generation.tests.decks_support import deck_build

    design = design_create(template=zodiac_template, name="Plain", title_template="{sign}")
    album = deck_build(slots=4, takes=2, titles=["Aries", "Taurus", "Gemini", "Cancer"])
    slots = {slot.index: slot for slot in DeckSlot.objects.filter(album=album)}
    second_take = GenerationJob.objects.filter(slot=slots[1]).order_by("created_at", "id")[1].result_image
    slot_pick(slot=slots[1], image=second_take)
    # Card 3 has no finished take yet.
    GenerationJob.objects.filter(slot=slots[2]).update(result_image=None, status=GenerationJob.Status.FAILED)

    sources = album_card_sources(album=album)
    assert [(source.index, source.title) for source in sources] == [
        (1, "Aries"),
        (2, "Taurus"),
        (3, "Gemini"),
        (4, "Cancer"),
    ]
    result = deck_finish(album=album, design=design, workers=2)
    assert [source.index for source in result.missing] == [3]
    assert [card.position for card in result.cards] == [1, 2, 4]
    by_position = {card.position: card for card in result.cards}
    assert by_position[2].source_image == second_take and by_position[2].slot == slots[1]
    first_take = GenerationJob.objects.filter(slot=slots[0]).order_by("created_at", "id")[0].result_image
    assert by_position[1].source_image == first_take and by_position[1].slot == slots[0]
    assert by_position[4].title == "Cancer" and by_position[4].row == {"sign": "Cancer"}
    assert result.back is not None and result.back.slot is None
