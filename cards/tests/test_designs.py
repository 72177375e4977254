"""Card designs: every bad input refused at save with a message naming the field; copies; the admin."""

from __future__ import annotations

import io
import struct
import zlib
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from cards.models import CardDesign, LayoutGuide
from cards.render.imageio import ImageInputError, image_open_checked
from cards.services.designs import design_copy, design_create, design_spec, design_update
from cards.services.guides import guide_image_for_row, layout_guide_image_add, layout_guide_save
from imagineer.errors import ApplicationError


def png(size: tuple[int, int], mode: str = "RGBA", color=(255, 0, 0, 128), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color[: len(mode)] if mode != "P" else 1).save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming 3.6 gigapixels, with a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def refused(field: str, **kwargs) -> str:
    with pytest.raises(ApplicationError) as caught:
        kwargs.setdefault("name", "Bad")
        design_create(**kwargs)
    assert field in caught.value.fields, caught.value.fields
    return " ".join(caught.value.fields[field])


def test_a_playing_card_design_gets_indices_with_the_red_suit_rule(card_deck_template):
    design = design_create(template=card_deck_template, name="Classic")
    assert design.index_template == "{value|rank}\n{suit|suit}"
    assert design.index_color_map["Hearts"] == design.index_color_map["Diamonds"] == "#c8102e"
    spec = design_spec(design)
    assert spec.geometry.canvas_px == (815, 1110)
    assert spec.index.color_for({"suit": "hearts"}) == (200, 16, 46)
    assert spec.index.color_for({"suit": "Spades"}) == (0, 0, 0)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"art_x_mm": 10, "art_y_mm": 0, "art_width_mm": 60, "art_height_mm": 80}, "art_width_mm", "leaves the card"),
        ({"art_x_mm": 0, "art_y_mm": 10, "art_width_mm": 60, "art_height_mm": 80}, "art_height_mm", "leaves the card"),
        ({"art_x_mm": -1, "art_y_mm": 0, "art_width_mm": 20, "art_height_mm": 20}, "art_x_mm", "left of the card"),
        ({"art_x_mm": 5}, "art_y_mm", "all four"),
        ({"safe_margin_mm": Decimal("32")}, "safe_margin_mm", "less than 31.5 mm"),
        ({"bleed_mm": Decimal("10.5")}, "bleed_mm", "0 to 10 mm"),
        ({"dpi": 71}, "dpi", "between 72 and 1200"),
        ({"dpi": 1201}, "dpi", "between 72 and 1200"),
        ({"size_preset": "custom", "width_mm": 300, "height_mm": 300, "dpi": 1200}, "dpi", "megapixels"),
        ({"size_preset": "custom", "width_mm": 63}, "height_mm", "custom size needs"),
        ({"size_preset": "huge"}, "size_preset", "Unknown size"),
        ({"title_template": "{nope}"}, "title_template", "No column 'nope'"),
        ({"index_template": "{value|shout}"}, "index_template", "Unknown filter"),
        ({"index_color_column": "colour"}, "index_color_column", "No column 'colour'"),
        ({"index_color_column": "suit", "index_color_map": {}}, "index_color_column", "is not a colour"),
        ({"index_color_map": {"Hearts": "reddish"}}, "index_color_map", "not a colour"),
        ({"frame_color": "#12345"}, "frame_color", "not a colour"),
        ({"title_font": "comic-sans"}, "title_font", "Unknown font"),
        ({"font_fallbacks": ["sans", "wingdings"]}, "font_fallbacks", "wingdings"),
        ({"frame_width_mm": 20}, "frame_width_mm", "outside"),
        ({"name": " "}, "name", "name"),
        ({"back_prompt": "x" * 1001}, "back_prompt", "limit is 1000"),
    ],
)
def test_bad_designs_are_refused_naming_the_field(card_deck_template, fields, field, words):
    assert words in refused(field, template=card_deck_template, **fields)
    assert not CardDesign.objects.exists()


def test_text_the_fonts_cannot_draw_is_refused_naming_the_characters(card_deck_template):
    card_deck_template.csv_data[0]["value"] = "Ace 🦄"
    card_deck_template.save()
    message = refused("title_template", template=card_deck_template, title_template="{value} of {suit}")
    assert "U+1F984 UNICORN FACE" in message and "rows 1" in message
    # Without the symbols fonts the suits cannot be drawn either.
    message = refused("index_template", template=card_deck_template, font_fallbacks=["sans"])
    for suit in ("SPADE", "HEART", "DIAMOND", "CLUB"):
        assert f"BLACK {suit} SUIT" in message


def test_zodiac_symbols_and_non_latin_titles_are_covered(zodiac_template):
    zodiac_template.csv_data[0]["sign"] = "牡羊座"
    zodiac_template.csv_data[1]["sign"] = "الثور"
    zodiac_template.save()
    design = design_create(template=zodiac_template, name="Stars", index_template="{symbol}", index_font="sans")
    assert design.title_template == "{sign}"


def test_overlays_must_be_pngs_with_alpha_of_the_cards_shape(card_deck_template):
    make = lambda data, name="frame.png": SimpleUploadedFile(name, data, content_type="image/png")  # noqa: E731
    assert "must be a PNG" in refused(
        "frame_overlay", template=card_deck_template, frame_overlay=make(png((744, 1039), "RGB", fmt="JPEG"), "f.jpg")
    )
    assert "no transparency" in refused(
        "frame_overlay", template=card_deck_template, frame_overlay=make(png((744, 1039), "RGB"))
    )
    assert "not the card's shape" in refused(
        "frame_overlay", template=card_deck_template, frame_overlay=make(png((500, 500)))
    )
    assert "could not be read" in refused(
        "frame_overlay", template=card_deck_template, frame_overlay=make(b"not a png")
    )
    assert "too large" in refused("frame_overlay", template=card_deck_template, frame_overlay=make(bomb_png()))
    trim = design_create(template=card_deck_template, name="Trim", frame_overlay=make(png((372, 520))))
    canvas = design_create(template=card_deck_template, name="Canvas", frame_overlay=make(png((815, 1110))))
    assert trim.frame_overlay.name.startswith("cards/overlays/") and canvas.frame_overlay.name


def test_backs_that_cannot_be_decoded_are_refused(card_deck_template):
    upload = SimpleUploadedFile("back.png", bomb_png(), content_type="image/png")
    assert "too large" in refused("back_image", template=card_deck_template, back_image=upload)
    upload = SimpleUploadedFile("back.png", png((300, 420), "RGB"), content_type="image/png")
    design = design_create(template=card_deck_template, name="Backed", back_image=upload)
    assert design_spec(design).back_path.is_file()


def test_update_validates_and_copy_keeps_its_own_files(card_deck_template, zodiac_template):
    upload = SimpleUploadedFile("back.png", png((300, 420), "RGB"), content_type="image/png")
    design = design_create(template=card_deck_template, name="Classic", back_image=upload, bleed_mm=Decimal("2"))
    with pytest.raises(ApplicationError) as caught:
        design_update(design=design, bleed_mm=Decimal("11"))
    assert "bleed_mm" in caught.value.fields
    design.refresh_from_db()
    assert design.bleed_mm == Decimal("2.00")
    copy = design_copy(design=design)
    assert copy.name == "Classic (copy)" and copy.bleed_mm == design.bleed_mm
    assert copy.back_image.name != design.back_image.name
    assert design_spec(copy).back_path.read_bytes() == design_spec(design).back_path.read_bytes()
    # A copy for another template is checked against that template's columns.
    with pytest.raises(ApplicationError) as caught:
        design_copy(design=design, template=zodiac_template)
    assert "index_template" in caught.value.fields


def test_layout_images_that_cannot_be_decoded_or_are_bombs_are_refused(card_deck_template):
    guide = layout_guide_save(template=card_deck_template, kind=LayoutGuide.Kind.IMAGE)
    with pytest.raises(ApplicationError) as caught:
        layout_guide_image_add(guide=guide, name="layout", upload=bomb_png())
    assert "file" in caught.value.fields and "too large" in caught.value.message
    with pytest.raises(ApplicationError) as caught:
        layout_guide_image_add(guide=guide, name="layout", upload=b"GIF89a broken")
    assert "could not be used" in caught.value.message
    layout_guide_image_add(guide=guide, name="layout", upload=png((256, 256), "RGB", (0, 0, 255)))
    image = guide_image_for_row(guide=guide, row_index=3)
    assert image.size == (card_deck_template.width, card_deck_template.height)
    assert image.getpixel((10, 10)) == (0, 0, 255)


def test_images_past_the_pixel_limit_are_stopped_before_decoding():
    with pytest.raises(ImageInputError, match="too large"):
        image_open_checked(io.BytesIO(bomb_png()))
    # Under Pillow's own bomb limit but over ours: refused from the header alone.
    with pytest.raises(ImageInputError, match=r"9000 x 9000 pixels \(81 megapixels\), too large"):
        image_open_checked(io.BytesIO(bomb_png(9000, 9000)))


def test_playing_card_guides_check_every_row(card_deck_template, zodiac_template):
    guide = layout_guide_save(template=card_deck_template, kind=LayoutGuide.Kind.PLAYING_CARDS, strength=0.6)
    assert guide_image_for_row(guide=guide, row_index=0).size == (512, 720)
    with pytest.raises(ApplicationError) as caught:
        layout_guide_save(template=zodiac_template, kind=LayoutGuide.Kind.PLAYING_CARDS)
    assert "rank_column" in caught.value.fields and "suit_column" in caught.value.fields
    with pytest.raises(ApplicationError) as caught:
        layout_guide_save(
            template=zodiac_template, kind=LayoutGuide.Kind.PLAYING_CARDS, rank_column="sign", suit_column="element"
        )
    assert "Row 1" in caught.value.fields["rank_column"][0]
    with pytest.raises(ApplicationError) as caught:
        layout_guide_save(template=card_deck_template, kind="playing_cards", control_start=0.8, control_end=0.5)
    assert "control_end" in caught.value.fields


def test_a_column_of_layout_images_must_name_uploaded_images(zodiac_template):
    guide = layout_guide_save(template=zodiac_template, kind=LayoutGuide.Kind.COLUMN, image_column="element")
    for element in ("Fire", "Earth", "Air"):
        layout_guide_image_add(guide=guide, name=element, upload=png((64, 64), "RGB"))
    with pytest.raises(ApplicationError) as caught:
        layout_guide_save(template=zodiac_template, kind=LayoutGuide.Kind.COLUMN, image_column="element")
    assert "Water" in caught.value.fields["image_column"][0]
    with pytest.raises(ApplicationError) as caught:
        layout_guide_save(template=zodiac_template, kind=LayoutGuide.Kind.COLUMN, image_column="colour")
    assert "No column 'colour'" in caught.value.fields["image_column"][0]


def test_the_admin_refuses_a_bad_design_next_to_its_field(staff_client, card_deck_template):
    data = {
        "template": card_deck_template.pk,
        "name": "Admin design",
        "size_preset": "poker",
        "dpi": 300,
        "bleed_mm": "3",
        "safe_margin_mm": "4",
        "corner_radius_mm": "3",
        "art_x_mm": "10",
        "art_y_mm": "0",
        "art_width_mm": "60",
        "art_height_mm": "88",
        "bleed_fill": "mirror",
        "background_color": "#ffffff",
        "frame_color": "#000000",
        "frame_width_mm": "0",
        "index_template": "{value|rank}",
        "index_font": "serif-bold",
        "index_size_mm": "6",
        "index_color": "#000000",
        "index_color_column": "",
        "index_color_map": "{}",
        "title_template": "{value} of {suit}",
        "title_font": "serif",
        "title_size_mm": "4.5",
        "title_color": "#000000",
        "title_position": "bottom",
        "title_band_color": "#ffffff",
        "title_band_opacity": "85",
        "font_fallbacks": '["sans", "symbols2"]',
        "back_color": "#1f2a44",
    }
    response = staff_client.post("/admin/cards/carddesign/add/", data)
    assert response.status_code == 200
    assert "leaves the card" in response.content.decode()
    assert not CardDesign.objects.exists()
    data["art_width_mm"] = "53"
    response = staff_client.post("/admin/cards/carddesign/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert CardDesign.objects.get().art_width_mm == Decimal("53.00")
