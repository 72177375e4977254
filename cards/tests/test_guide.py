"""The procedural playing-card guide: pips counted as connected components, in the right halves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cards.render.guide import GuideError, PlayingCard, playing_card_guide, playing_card_parse

SIZE = (512, 720)
RANK_WORDS = ["Ace", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]
# (above the middle, on the middle line, below the middle) for Ace..10, as printed decks have them.
HALVES = {
    1: (0, 1, 0),
    2: (1, 0, 1),
    3: (1, 1, 1),
    4: (2, 0, 2),
    5: (2, 1, 2),
    6: (2, 2, 2),
    7: (3, 2, 2),
    8: (3, 2, 3),
    9: (4, 1, 4),
    10: (5, 0, 5),
}


def components(image) -> list[dict]:
    ink = np.asarray(image.convert("L")) < 128
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3)))
    found = []
    for number, box in enumerate(ndimage.find_objects(labels), 1):
        mask = labels[box] == number
        rows = np.nonzero(mask)[0]
        found.append(
            {
                "centre": ((box[0].start + box[0].stop) / 2, (box[1].start + box[1].stop) / 2),
                # Where the pip's ink sits inside its own box: above 0 means heavier at the bottom.
                "mass": rows.mean() / mask.shape[0] - 0.5,
                "box": (box[1].start, box[0].start, box[1].stop, box[0].stop),
                "area": int(mask.sum()),
            }
        )
    return found


@pytest.mark.parametrize("suit", ["Spades", "Hearts", "Diamonds", "Clubs"])
@pytest.mark.parametrize("pips", range(1, 11))
def test_pip_cards_have_the_right_number_of_pips_in_the_right_halves(pips, suit):
    card = playing_card_parse(RANK_WORDS[pips - 1], suit)
    found = components(playing_card_guide(card, SIZE))
    assert len(found) == pips
    middle = SIZE[1] / 2
    above = sum(1 for pip in found if pip["centre"][0] < middle - 5)
    on_line = sum(1 for pip in found if abs(pip["centre"][0] - middle) <= 5)
    below = sum(1 for pip in found if pip["centre"][0] > middle + 5)
    assert (above, on_line, below) == HALVES[pips]
    # The corners, where the finished card prints its indices, stay empty.
    for pip in found:
        left, top, right, bottom = pip["box"]
        assert not (right < SIZE[0] * 0.2 and bottom < SIZE[1] * 0.2)
        assert not (left > SIZE[0] * 0.8 and top > SIZE[1] * 0.8)


@pytest.mark.parametrize("suit", ["Spades", "Hearts", "Clubs"])
def test_the_lower_half_is_upside_down(suit):
    """Spades, hearts and clubs are not symmetric top to bottom: the pips below the middle
    carry their ink on the other side of their box from the pips above."""
    found = components(playing_card_guide(playing_card_parse("Ten", suit), SIZE))
    upper = [pip["mass"] for pip in found if pip["centre"][0] < SIZE[1] / 2]
    lower = [pip["mass"] for pip in found if pip["centre"][0] > SIZE[1] / 2]
    assert all(np.sign(mass) == np.sign(upper[0]) != 0 for mass in upper)
    assert all(np.sign(mass) == -np.sign(upper[0]) for mass in lower)


def test_red_suits_are_red_and_black_suits_black():
    hearts = np.asarray(playing_card_guide(playing_card_parse("5", "♥"), SIZE)).reshape(-1, 3)
    spades = np.asarray(playing_card_guide(playing_card_parse("5", "S"), SIZE)).reshape(-1, 3)
    inked_hearts = hearts[hearts.min(axis=1) < 128]
    inked_spades = spades[spades.max(axis=1) < 128]
    assert (inked_hearts[:, 0] > 150).mean() > 0.9
    assert len(inked_spades) > 1000


def test_the_ace_is_one_large_pip():
    ace = components(playing_card_guide(playing_card_parse("Ace", "Spades"), SIZE))[0]
    two = components(playing_card_guide(playing_card_parse("Two", "Spades"), SIZE))[0]
    assert ace["area"] > 5 * two["area"]


@pytest.mark.parametrize("rank", ["Jack", "Queen", "King"])
def test_court_cards_have_a_framed_figure_area_with_corner_pips(rank):
    found = components(playing_card_guide(playing_card_parse(rank, "Diamonds"), SIZE))
    frame = max(found, key=lambda item: (item["box"][2] - item["box"][0]) * (item["box"][3] - item["box"][1]))
    left, top, right, bottom = frame["box"]
    assert right - left > SIZE[0] * 0.5 and bottom - top > SIZE[1] * 0.6
    pips = [item for item in found if item is not frame]
    assert len(pips) == 2
    # One pip near the frame's top-left corner, one (inverted) near its bottom-right.
    assert min(pip["centre"][1] for pip in pips) < left + (right - left) * 0.25
    assert max(pip["centre"][1] for pip in pips) > right - (right - left) * 0.25


def test_jokers_have_a_frame_and_a_star_in_their_colour():
    red = playing_card_guide(playing_card_parse("Joker", "Red"), SIZE)
    black = playing_card_guide(playing_card_parse("Joker", "Black"), SIZE)
    assert len(components(red)) == len(components(black)) == 2
    assert playing_card_parse("Joker", "Red") == PlayingCard("JOKER", "red")
    assert np.asarray(red)[360, 256].tolist() == [200, 16, 46]
    assert np.asarray(black)[360, 256].tolist() == [0, 0, 0]


def test_the_guide_is_drawn_at_the_generation_size():
    assert playing_card_guide(playing_card_parse("7", "C"), (512, 896)).size == (512, 896)
    assert playing_card_guide(playing_card_parse("7", "C"), (768, 768)).mode == "RGB"


@pytest.mark.parametrize(
    ("rank", "suit", "message"), [("Eleven", "Spades", "not a playing-card rank"), ("2", "Stars", "not a suit")]
)
def test_rows_that_are_not_playing_cards_are_refused(rank, suit, message):
    with pytest.raises(GuideError, match=message):
        playing_card_parse(rank, suit)
