"""Card designs, layout guides and finished cards.

A ``CardDesign`` says how a template's cards look and print (size, DPI, bleed, art window,
frame, indices, title, back). Validation lives in ``cards.services.designs`` (``design_validate``),
which the admin form and every service call, so a saved design always renders.
A ``LayoutGuide`` steers generation of a template's rows (procedural pips or uploaded images).
A ``FinishingJob`` is the background work that finishes a deck and writes its exports.
A ``FinishedCard`` is one print-ready card of an album in one design; its ``render_key``
is a digest of everything that went into it, so a changed design or pick makes it stale.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cards.render.fonts import DEFAULT_FALLBACKS, FONT_CHOICES
from cards.render.geometry import SIZE_PRESETS
from imagineer.models import Job

DPI_MIN, DPI_MAX = 72, 1200
BLEED_MAX_MM = Decimal("10")
CUSTOM_SIZE_MIN_MM, CUSTOM_SIZE_MAX_MM = Decimal("20"), Decimal("300")


def _mm(default: str | None = None, **kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=Decimal(default) if default is not None else None,
        validators=[MinValueValidator(Decimal("0"))],
        **kwargs,
    )


def default_fallbacks() -> list[str]:
    return list(DEFAULT_FALLBACKS)


class CardDesign(models.Model):
    class SizePreset(models.TextChoices):
        POKER = "poker", SIZE_PRESETS["poker"].label
        BRIDGE = "bridge", SIZE_PRESETS["bridge"].label
        TAROT = "tarot", SIZE_PRESETS["tarot"].label
        SQUARE = "square", SIZE_PRESETS["square"].label
        CUSTOM = "custom", "Custom (width x height in mm)"

    class BleedFill(models.TextChoices):
        MIRROR = "mirror", "Mirror the art's edges into the bleed"
        COVER = "cover", "Scale the art over the bleed (the cut trims a little art)"

    class TitlePosition(models.TextChoices):
        BOTTOM = "bottom", "Bottom"
        TOP = "top", "Top"

    template = models.ForeignKey("generation.BatchTemplate", on_delete=models.CASCADE, related_name="card_designs")
    name = models.CharField(max_length=200)

    size_preset = models.CharField(max_length=16, choices=SizePreset.choices, default=SizePreset.POKER)
    width_mm = _mm(None, null=True, blank=True, help_text="Trim width for a custom size.")
    height_mm = _mm(None, null=True, blank=True, help_text="Trim height for a custom size.")
    dpi = models.PositiveIntegerField(default=300, validators=[MinValueValidator(DPI_MIN), MaxValueValidator(DPI_MAX)])
    bleed_mm = _mm("3", help_text="Art printed past the trim on every side; the printer cuts it off.")
    safe_margin_mm = _mm("4", help_text="Indices and title stay this far inside the trim.")
    corner_radius_mm = _mm("3", help_text="Rounded corners of previews (printers cut the corners).")

    # The art window, from the trim's top-left corner; all empty means the whole card.
    art_x_mm = _mm(None, null=True, blank=True)
    art_y_mm = _mm(None, null=True, blank=True)
    art_width_mm = _mm(None, null=True, blank=True)
    art_height_mm = _mm(None, null=True, blank=True)
    bleed_fill = models.CharField(max_length=8, choices=BleedFill.choices, default=BleedFill.MIRROR)
    background_color = models.CharField(max_length=32, default="#ffffff", help_text="Shows where the art is not.")

    frame_color = models.CharField(max_length=32, default="#1f2a44")
    frame_width_mm = _mm("0", help_text="A band inside the trim, carried into the bleed; 0 for none.")
    frame_overlay = models.FileField(
        upload_to="cards/overlays/",
        max_length=300,
        blank=True,
        help_text="A PNG with transparency of the card's shape (trim, or trim + bleed); replaces the band.",
    )

    index_template = models.TextField(
        blank=True, help_text="Corner index, one line per line, e.g. '{value|rank}' and '{suit|suit}'; empty for none."
    )
    index_font = models.CharField(max_length=16, choices=FONT_CHOICES, default="serif-bold")
    index_size_mm = _mm("6")
    index_color = models.CharField(max_length=32, default="#000000")
    index_color_column = models.CharField(
        max_length=200, blank=True, help_text="The column that decides the index colour."
    )
    index_color_map = models.JSONField(
        default=dict,
        blank=True,
        help_text='Colour per value of that column, e.g. {"Hearts": "#c8102e"}; empty: the value is the colour.',
    )

    title_template = models.CharField(max_length=500, blank=True, help_text="Title banner, e.g. '{name}'.")
    title_font = models.CharField(max_length=16, choices=FONT_CHOICES, default="serif")
    title_size_mm = _mm("4.5")
    title_color = models.CharField(max_length=32, default="#000000")
    title_position = models.CharField(max_length=8, choices=TitlePosition.choices, default=TitlePosition.BOTTOM)
    title_band_color = models.CharField(max_length=32, blank=True, default="#ffffff")
    title_band_opacity = models.PositiveSmallIntegerField(default=85, validators=[MaxValueValidator(100)])

    font_fallbacks = models.JSONField(
        default=default_fallbacks, blank=True, help_text="Bundled fonts tried in order for characters the first lacks."
    )

    back_image = models.FileField(upload_to="cards/backs/", max_length=300, blank=True)
    back_color = models.CharField(max_length=32, default="#1f2a44", help_text="The back when there is no image.")
    back_prompt = models.TextField(
        blank=True,
        help_text="Generate the back from this prompt, once per deck, when there is no uploaded back image.",
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="card_designs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["template", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "name"], name="card_design_template_name_unique"),
            models.CheckConstraint(condition=models.Q(dpi__gte=DPI_MIN, dpi__lte=DPI_MAX), name="card_design_dpi"),
            models.CheckConstraint(
                condition=models.Q(bleed_mm__gte=0, bleed_mm__lte=BLEED_MAX_MM), name="card_design_bleed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.template})"


class LayoutGuide(models.Model):
    """How a template's generation is steered. Phase 2 feeds the guide image of each row to
    img2img (``strength``) or, with a ControlNet configured, to ControlNet (scale, start, end)."""

    class Kind(models.TextChoices):
        PLAYING_CARDS = "playing_cards", "Standard playing cards (pips drawn from rank and suit columns)"
        IMAGE = "image", "One uploaded layout image for every row"
        COLUMN = "column", "A column names an uploaded layout image per row"

    class Mode(models.TextChoices):
        IMG2IMG = "img2img", "img2img init image"
        CONTROLNET = "controlnet", "ControlNet control image"

    template = models.OneToOneField("generation.BatchTemplate", on_delete=models.CASCADE, related_name="layout_guide")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rank_column = models.CharField(max_length=200, blank=True, default="value")
    suit_column = models.CharField(max_length=200, blank=True, default="suit")
    image_column = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.IMG2IMG)
    strength = models.FloatField(
        default=0.75,
        validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
        help_text="img2img: how far generation may move away from the guide.",
    )
    controlnet_scale = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    control_start = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    control_end = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Layout guide of {self.template}"


class LayoutGuideImage(models.Model):
    """An uploaded layout image; with kind 'image' the guide's only one, with kind 'column'
    the image a row names by ``name``."""

    guide = models.ForeignKey(LayoutGuide, on_delete=models.CASCADE, related_name="images")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to="cards/guides/", max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["guide", "name"]
        constraints = [models.UniqueConstraint(fields=["guide", "name"], name="layout_guide_image_name_unique")]

    def __str__(self) -> str:
        return self.name


class FinishedCard(models.Model):
    """One print-ready card (or the back) of an album in a design, stored as an Image."""

    class Side(models.TextChoices):
        FRONT = "front", "Front"
        BACK = "back", "Back"

    design = models.ForeignKey(CardDesign, on_delete=models.CASCADE, related_name="finished_cards")
    album = models.ForeignKey("albums.Album", on_delete=models.CASCADE, related_name="finished_cards")
    side = models.CharField(max_length=8, choices=Side.choices, default=Side.FRONT)
    # 1-based place in the deck; 0 for the back.
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=300, blank=True)
    row = models.JSONField(default=dict, blank=True)
    source_image = models.ForeignKey(
        "albums.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="finished_from"
    )
    # The deck's card this was made for (its pick is ``source_image``); empty for the back.
    slot = models.ForeignKey(
        "generation.DeckSlot", null=True, blank=True, on_delete=models.SET_NULL, related_name="finished_cards"
    )
    image = models.OneToOneField("albums.Image", on_delete=models.CASCADE, related_name="finished_card")
    render_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["album", "design", "side", "position"]
        constraints = [
            models.UniqueConstraint(fields=["design", "album", "side", "position"], name="finished_card_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.album} / {self.design.name} #{self.position}"


HIRES_SCALE_MIN, HIRES_SCALE_MAX = 1.25, 2.0
HIRES_DENOISE_MIN, HIRES_DENOISE_MAX = 0.05, 0.7


class FinishingJob(Job):
    """Finishing a deck in a design (and writing its exports) in the background.

    Status transitions are the job base's (imagineer.models.Job). Stages, in order:
    ``hires`` (only with ``hires``: an img2img pass over every pick at ``hires_scale`` with
    ``hires_denoise``, on the gpu queue), ``finish`` (render the cards, default queue), then
    one stage per export. ``progress_done / progress_total`` count the current stage's items.
    ``result`` holds what a finished job made: ``files`` (export name -> media path),
    ``missing`` and ``failed`` cards, ``rendered`` / ``reused`` counts.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    album = models.ForeignKey("albums.Album", on_delete=models.CASCADE, related_name="finishing_jobs")
    design = models.ForeignKey(CardDesign, on_delete=models.CASCADE, related_name="finishing_jobs")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    formats = models.JSONField(default=list, blank=True, help_text="Exports to write after finishing.")
    duplex = models.BooleanField(default=True)
    force = models.BooleanField(default=False)
    hires = models.BooleanField(default=False)
    hires_scale = models.FloatField(
        default=2.0, validators=[MinValueValidator(HIRES_SCALE_MIN), MaxValueValidator(HIRES_SCALE_MAX)]
    )
    hires_denoise = models.FloatField(
        default=0.3, validators=[MinValueValidator(HIRES_DENOISE_MIN), MaxValueValidator(HIRES_DENOISE_MAX)]
    )
    stage = models.CharField(max_length=32, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="finishing_jobs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Finishing {self.album} in {self.design.name}"
