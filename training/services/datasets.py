"""Training datasets: an album's images with one caption each, validated before any GPU work.

Captions come from, in order: the image's SD-training caption label, its default caption
label, then the prompt it was generated from (``TrainingRun.CaptionSource.AUTO``); a run may
also insist on one source. The offline labeler's captions are never used: they describe pixel
statistics, not the picture. The same dataset exports as a kohya DreamBooth folder in a zip,
with a kohya dataset config (``dataset.toml``) that names the ``.txt`` captions (kohya's
default caption extension is ``.caption``); images kohya or OneTrainer would skip (anything
but PNG, JPEG and WebP) are converted to PNG.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db.models import Prefetch
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from albums.models import Album, AlbumImage
from albums.selectors import deck_pick_ids
from albums.services.files import media_path
from imagineer.errors import ApplicationError, field_error
from labeling.backends.local import NAME as OFFLINE_LABELER
from labeling.models import Label
from training.models import TrainingRun

MIN_IMAGES = 2
MAX_IMAGES = 5000
EXPORT_REPEATS = 10
# Pixel modes Pillow converts to RGB without guessing (16/32-bit and float modes would need a
# tone mapping we would have to invent).
CONVERTIBLE_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
TRIGGER_PATTERN = re.compile(r"^[\w][\w \-.]{0,99}$")
# What kohya's sd-scripts and OneTrainer read, by Pillow format name -> the file extension we write.
TRAINER_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
EXPORT_RESOLUTION = 512
DATASET_CONFIG = "dataset.toml"
# A dataset zip up to this size is built in memory, a larger one in a temporary file.
EXPORT_SPOOL_IN_MEMORY = 32 * 1024 * 1024


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


def trigger_word_default(album: Album) -> str:
    """A trigger word from the album when none is given (its slug, '-' as '_')."""
    return album.slug.replace("-", "_")[:100]


def caption_with_trigger(trigger_word: str, caption: str) -> str:
    return f"{trigger_word}, {caption}" if caption else trigger_word


def _caption_pick(labels: list[Label], prompt: str, caption_source: str) -> tuple[str, str] | None:
    captions = [
        label
        for label in labels
        if label.label_type == Label.LabelType.CAPTION and label.text.strip() and label.source != OFFLINE_LABELER
    ]
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
    picks = deck_pick_ids(album=album)
    if picks is not None:
        # A deck trains on its picks, in slot order, not on every take.
        by_image = {membership.image_id: membership for membership in memberships}
        memberships = [by_image[pk] for pk in picks if pk in by_image]
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


def dataset_config_toml(*, folder: str, trigger_word: str, repeats: int, resolution: int) -> str:
    """kohya sd-scripts' dataset config (``--dataset_config``) for the exported folder."""
    return (
        "# kohya sd-scripts dataset config: train_network.py --dataset_config dataset.toml ...\n"
        "# Run it from the folder this zip was unpacked into (image_dir is relative to it).\n"
        "[general]\n"
        "enable_bucket = true\n"
        'caption_extension = ".txt"\n'
        "\n"
        "[[datasets]]\n"
        f"resolution = {resolution}\n"
        "batch_size = 1\n"
        "\n"
        "  [[datasets.subsets]]\n"
        f"  image_dir = {json.dumps(folder)}\n"
        f"  num_repeats = {repeats}\n"
        f"  class_tokens = {json.dumps(trigger_word)}\n"
    )


def _image_for_trainers(path: Path) -> tuple[str, bytes | None]:
    """(extension, None) for a file kohya and OneTrainer read as is; (".png", PNG bytes) for any other."""
    with PILImage.open(path) as image:
        if image.format in TRAINER_FORMATS:
            return TRAINER_FORMATS[image.format], None
        # The first frame of an animation, upright, without palette or 16-bit modes.
        image.seek(0)
        frame = ImageOps.exif_transpose(image)
        has_alpha = frame.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in frame.info
        frame = frame.convert("RGBA" if has_alpha else "RGB")
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    return ".png", buffer.getvalue()


def dataset_export_zip(
    *,
    album: Album,
    trigger_word: str,
    handle: IO[bytes],
    caption_source: str = TrainingRun.CaptionSource.AUTO,
    repeats: int = EXPORT_REPEATS,
    resolution: int = EXPORT_RESOLUTION,
    progress=None,
) -> int:
    """Write the album as ``N_trigger/NNNN.<ext>`` + ``NNNN.txt`` pairs and ``dataset.toml`` into a zip.

    Returns the image count. Everything is validated first, so a refused album writes nothing.
    """
    trigger_word = trigger_word_validate(trigger_word)
    if not 1 <= repeats <= 1000:
        raise field_error("repeats", "Repeats must be between 1 and 1000.")
    if not 64 <= resolution <= 4096 or resolution % 64:
        raise field_error("resolution", "The resolution must be a multiple of 64 between 64 and 4096, e.g. 512.")
    items = dataset_collect(album=album, caption_source=caption_source)
    folder = kohya_folder_name(trigger_word, repeats)
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(
            DATASET_CONFIG,
            dataset_config_toml(folder=folder, trigger_word=trigger_word, repeats=repeats, resolution=resolution),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        for index, item in enumerate(items, start=1):
            source = media_path(item.file)
            stem = f"{index:04d}"
            extension, converted = _image_for_trainers(source)
            if converted is None:
                archive.write(source, f"{folder}/{stem}{extension}")
            else:
                archive.writestr(f"{folder}/{stem}{extension}", converted)
            archive.writestr(
                f"{folder}/{stem}.txt",
                caption_with_trigger(trigger_word, item.caption) + "\n",
                compress_type=zipfile.ZIP_DEFLATED,
            )
            if progress is not None:
                progress(index, len(items))
    return len(items)


def dataset_zip_name(album: Album) -> str:
    return f"{album.slug}-dataset.zip"


def dataset_export_spooled(*, album: Album, trigger_word: str, caption_source: str, repeats: int | str) -> IO[bytes]:
    """The dataset zip in a spooled temporary file, rewound for reading; the caller closes it.

    Validated before anything is written, so a refused export leaves nothing behind.
    """
    try:
        repeats = int(repeats)
    except (TypeError, ValueError):
        raise field_error("repeats", "Repeats must be a whole number.") from None
    handle = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_IN_MEMORY)  # noqa: SIM115 - handed to the caller
    try:
        dataset_export_zip(
            album=album, trigger_word=trigger_word, caption_source=caption_source, repeats=repeats, handle=handle
        )
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle
