"""Training datasets: an album's images with one caption each, validated before any GPU work.

Captions come from, in order: the image's SD-training caption label, its default caption
label, then the prompt it was generated from (``TrainingRun.CaptionSource.AUTO``); a run may
also insist on one source. The same dataset exports as a kohya-style folder in a zip.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db.models import Prefetch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from albums.models import Album, AlbumImage
from albums.services.files import media_path
from imagineer.errors import ApplicationError, field_error
from labeling.models import Label
from training.models import TrainingRun

MIN_IMAGES = 2
MAX_IMAGES = 5000
EXPORT_REPEATS = 10
# Pixel modes Pillow converts to RGB without guessing (16/32-bit and float modes would need a
# tone mapping we would have to invent).
CONVERTIBLE_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
TRIGGER_PATTERN = re.compile(r"^[\w][\w \-.]{0,99}$")


@dataclass(frozen=True)
class DatasetItem:
    image_id: int
    file: str  # relative to MEDIA_ROOT
    caption: str  # without the trigger word
    caption_source: str


def trigger_word_validate(trigger_word: str) -> str:
    trigger_word = " ".join(trigger_word.split())
    if not TRIGGER_PATTERN.match(trigger_word):
        raise field_error(
            "trigger_word",
            "The trigger word must be a short word (letters, digits, spaces, - _ .), e.g. 'mycardstyle'; it starts every caption.",
        )
    return trigger_word


def caption_with_trigger(trigger_word: str, caption: str) -> str:
    return f"{trigger_word}, {caption}" if caption else trigger_word


def _caption_pick(labels: list[Label], prompt: str, caption_source: str) -> tuple[str, str] | None:
    captions = [label for label in labels if label.label_type == Label.LabelType.CAPTION and label.text.strip()]
    by_source: dict[str, list[Label]] = {
        TrainingRun.CaptionSource.SD_TRAINING: [c for c in captions if c.prompt_type == Label.PromptType.SD_TRAINING],
        TrainingRun.CaptionSource.DEFAULT: [c for c in captions if c.prompt_type != Label.PromptType.SD_TRAINING],
    }
    order = (
        [TrainingRun.CaptionSource.SD_TRAINING, TrainingRun.CaptionSource.DEFAULT, TrainingRun.CaptionSource.PROMPT]
        if caption_source == TrainingRun.CaptionSource.AUTO
        else [caption_source]
    )
    for source in order:
        if source == TrainingRun.CaptionSource.PROMPT:
            if prompt.strip():
                return " ".join(prompt.split()), source
            continue
        found = by_source[source]
        if found:
            # The newest label of that kind wins (re-labeling adds newer ones).
            return " ".join(found[-1].text.split()), source
    return None


def _image_check(relative: str, title: str) -> str | None:
    """A message naming what is wrong with the image file, or None if we can train on it."""
    try:
        path = media_path(relative)
    except ValueError:
        return f"{title}: the file path is outside the media folder."
    if not path.is_file():
        return f"{title}: the file is missing on disk ({relative})."
    try:
        with PILImage.open(path) as image:
            width, height, mode = image.width, image.height, image.mode
    except (UnidentifiedImageError, OSError) as exc:
        return f"{title}: not a readable image ({exc})."
    if width * height > settings.IMAGINEER_TRAINING_MAX_IMAGE_PIXELS:
        return (
            f"{title}: {width}×{height} is too large to train on "
            f"(limit {settings.IMAGINEER_TRAINING_MAX_IMAGE_PIXELS:,} pixels); downscale it first."
        )
    if mode not in CONVERTIBLE_MODES:
        return f"{title}: pixel mode {mode} cannot be converted to RGB safely; re-save it as an 8-bit RGB image."
    return None


def dataset_collect(*, album: Album, caption_source: str = TrainingRun.CaptionSource.AUTO) -> list[DatasetItem]:
    """The album's images and captions in album order; raises ApplicationError naming every problem.

    Non-RGB images (palette, greyscale, RGBA, CMYK) are accepted: the trainer converts them.
    """
    if caption_source not in TrainingRun.CaptionSource.values:
        raise field_error("caption_source", f"Unknown caption source {caption_source!r}.")
    captions = Label.objects.filter(label_type=Label.LabelType.CAPTION).order_by("created_at", "id")
    memberships = list(
        AlbumImage.objects.filter(album=album)
        .select_related("image")
        .prefetch_related(Prefetch("image__labels", queryset=captions))
        .order_by("position", "id")
    )
    if len(memberships) < MIN_IMAGES:
        raise field_error(
            "album",
            f"Album '{album.name}' has {len(memberships)} image{'s' if len(memberships) != 1 else ''}; "
            f"training needs at least {MIN_IMAGES}.",
        )
    if len(memberships) > MAX_IMAGES:
        raise field_error("album", f"Album '{album.name}' has {len(memberships)} images; the limit is {MAX_IMAGES}.")

    items, uncaptioned, broken = [], [], []
    for membership in memberships:
        image = membership.image
        title = f"Image {image.pk} ({image})"
        relative = image.file.name or ""
        problem = _image_check(relative, title)
        if problem:
            broken.append(problem)
            continue
        picked = _caption_pick(list(image.labels.all()), image.prompt, caption_source)
        if picked is None:
            uncaptioned.append(str(image.pk))
            continue
        items.append(DatasetItem(image_id=image.pk, file=relative, caption=picked[0], caption_source=picked[1]))
    problems = list(broken)
    if uncaptioned:
        source = TrainingRun.CaptionSource(caption_source).label.lower()
        problems.append(
            f"{len(uncaptioned)} image{'s have' if len(uncaptioned) != 1 else ' has'} no caption "
            f"({source}): image id{'s' if len(uncaptioned) != 1 else ''} {', '.join(uncaptioned[:20])}"
            f"{' …' if len(uncaptioned) > 20 else ''}. Label the album (SD training captions) or choose another "
            "caption source."
        )
    if problems:
        raise ApplicationError(" ".join(problems), fields={"album": problems}, code="dataset_invalid")
    return items


def tag_frequency(captions: list[str], trigger_word: str, folder: str) -> dict[str, dict[str, int]]:
    """kohya's ss_tag_frequency: {folder: {tag: count}}, tags being the comma-separated caption parts."""
    counter: Counter[str] = Counter()
    for caption in captions:
        for tag in caption_with_trigger(trigger_word, caption).split(","):
            tag = tag.strip()
            if tag:
                counter[tag] += 1
    return {folder: dict(counter.most_common())}


def kohya_folder_name(trigger_word: str, repeats: int = EXPORT_REPEATS) -> str:
    return f"{repeats}_{trigger_word}"


def dataset_export_zip(
    *,
    album: Album,
    trigger_word: str,
    handle: IO[bytes],
    caption_source: str = TrainingRun.CaptionSource.AUTO,
    repeats: int = EXPORT_REPEATS,
    progress=None,
) -> int:
    """Write the album as ``N_trigger/NNNN.<ext>`` + ``NNNN.txt`` pairs into a zip; returns the image count.

    Everything is validated first, so a refused album writes nothing.
    """
    trigger_word = trigger_word_validate(trigger_word)
    if not 1 <= repeats <= 1000:
        raise field_error("repeats", "Repeats must be between 1 and 1000.")
    items = dataset_collect(album=album, caption_source=caption_source)
    folder = kohya_folder_name(trigger_word, repeats)
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, item in enumerate(items, start=1):
            source = media_path(item.file)
            stem = f"{index:04d}"
            archive.write(source, f"{folder}/{stem}{Path(item.file).suffix.lower()}")
            archive.writestr(
                f"{folder}/{stem}.txt",
                caption_with_trigger(trigger_word, item.caption) + "\n",
                compress_type=zipfile.ZIP_DEFLATED,
            )
            if progress is not None:
                progress(index, len(items))
    return len(items)
