"""The offline labeler: no account, no network.

What it can honestly tell: an NSFW rating and person/face tags from NudeNet's detector (its
ONNX model ships inside the ``nudenet`` wheel; an optional extra because the package carries
the AGPL-3.0 licence), and orientation, size, colour and brightness tags computed from the
pixels. The caption is assembled from those facts and says so; no offline captioning model
is available here, so none is pretended. Each label records which of the two made it.
"""

from __future__ import annotations

import colorsys
import threading
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import cast

from PIL import Image as PILImage
from PIL import ImageStat

from labeling.backends.base import LabelerHealth, LabelError, LabelResult

NAME = "local"
PIXEL_MODEL = "pixel-statistics"
_DETECTOR_LOCK = threading.Lock()

# NudeNet classes → the rating they imply at a confident score.
_EXPLICIT = {"FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED"}
_ADULT = {"FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED"}
_SUGGESTIVE = {
    "FEMALE_BREAST_COVERED",
    "FEMALE_GENITALIA_COVERED",
    "BUTTOCKS_COVERED",
    "BELLY_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_COVERED",
}
_CONFIDENT = 0.5
_PERSON_CLASSES_SCORE = 0.4
_COLOURS = [
    (0, "red"),
    (30, "orange"),
    (55, "yellow"),
    (90, "green"),
    (170, "cyan"),
    (220, "blue"),
    (270, "purple"),
    (320, "pink"),
    (345, "red"),
]


@cache
def _detector_version() -> str | None:
    try:
        return metadata.version("nudenet")
    except metadata.PackageNotFoundError:
        return None


_detector = None


def _detect(image_path: Path) -> list[dict]:
    global _detector
    with _DETECTOR_LOCK:
        if _detector is None:
            from nudenet import NudeDetector  # optional extra; imported only when labeling offline

            _detector = NudeDetector()
        return _detector.detect(str(image_path))


def detector_model() -> str | None:
    version = _detector_version()
    return f"nudenet-{version}/320n.onnx" if version else None


def rating_from_detections(detections: list[dict]) -> str:
    confident = {d["class"] for d in detections if d["score"] >= _CONFIDENT}
    if confident & _EXPLICIT:
        return "EXPLICIT"
    if confident & _ADULT:
        return "ADULT"
    if confident & _SUGGESTIVE:
        return "SUGGESTIVE"
    return "SAFE"


def _colour_name(hue_degrees: float, saturation: float, value: float) -> str:
    if value < 0.15:
        return "black"
    if saturation < 0.15:
        return "white" if value > 0.85 else "grey"
    return next(name for limit, name in reversed(_COLOURS) if hue_degrees >= limit)


def pixel_facts(image_path: Path) -> dict:
    try:
        with PILImage.open(image_path) as opened:
            width, height = opened.size
            small = opened.convert("RGB")
            small.thumbnail((64, 64))
    except (OSError, PILImage.DecompressionBombError) as exc:
        raise LabelError(f"Cannot read image {image_path.name}: {exc}", code="unreadable_image") from None
    # The most common colour among a small palette says more than the mean colour.
    palette = small.quantize(colors=6)
    # A palette image's colours are (count, palette index) pairs.
    counts = cast(list[tuple[int, int]], sorted(palette.getcolors() or [], reverse=True))
    colours: list[str] = []
    flat = palette.getpalette() or []
    for count, index in counts:
        r, g, b = flat[index * 3 : index * 3 + 3]
        h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
        name = _colour_name(h * 360, s, v)
        if name not in colours and count >= 0.15 * small.width * small.height:
            colours.append(name)
    brightness = ImageStat.Stat(small.convert("L")).mean[0] / 255
    saturation = ImageStat.Stat(small.convert("HSV")).mean[1] / 255
    orientation = (
        "square"
        if abs(width - height) <= 0.05 * max(width, height)
        else ("landscape" if width > height else "portrait")
    )
    return {
        "width": width,
        "height": height,
        "orientation": orientation,
        "colours": colours[:3],
        "tone": "dark" if brightness < 0.3 else "bright" if brightness > 0.7 else None,
        "monochrome": saturation < 0.08,
    }


class LocalLabeler:
    name = NAME

    def label(self, image_path: Path, prompt_type: str = "default") -> LabelResult:
        image_path = Path(image_path)
        if not image_path.is_file():
            raise LabelError(f"Image file {image_path.name} is missing from the media folder.", code="file_missing")
        facts = pixel_facts(image_path)
        tag_models: dict[str, str] = {}
        pixel_tags = [facts["orientation"], *(f"{c} tones" for c in facts["colours"])]
        if facts["tone"]:
            pixel_tags.append(facts["tone"])
        if facts["monochrome"]:
            pixel_tags.append("monochrome")
        tag_models.update(dict.fromkeys(pixel_tags, PIXEL_MODEL))

        detector = detector_model()
        rating = None
        faces = 0
        if detector:
            detections = _detect(image_path)
            rating = rating_from_detections(detections)
            faces = sum(1 for d in detections if d["class"].startswith("FACE_") and d["score"] >= _PERSON_CLASSES_SCORE)
            if any(d["score"] >= _PERSON_CLASSES_SCORE for d in detections):
                tag_models["person"] = detector
            if faces:
                tag_models["face"] = detector

        caption = self._caption(facts, faces, detector, prompt_type)
        tags = list(tag_models)
        return LabelResult(
            caption=caption,
            tags=tags,
            nsfw_rating=rating,
            source=NAME,
            source_model=f"{PIXEL_MODEL} + {detector}" if detector else PIXEL_MODEL,
            prompt_type=prompt_type,
            raw_response="",
            tag_models=tag_models,
        )

    @staticmethod
    def _caption(facts: dict, faces: int, detector: str | None, prompt_type: str) -> str:
        colours = " and ".join(facts["colours"]) or "mixed"
        subject = f"{faces} face{'s' if faces != 1 else ''}" if faces else None
        if prompt_type == "sd_training":
            parts = [subject and ("a person" if faces == 1 else "people"), f"{facts['orientation']} composition"]
            parts += [
                f"{colours} tones",
                facts["tone"] and f"{facts['tone']} lighting",
                facts["monochrome"] and "monochrome",
            ]
            return ", ".join(p for p in parts if p)
        text = f"A {facts['orientation']} {facts['width']}x{facts['height']} image in {colours} tones"
        text += f" with {subject}." if subject else "."
        if detector is None:
            text += " No NSFW detector is installed (nudenet, an optional extra), so it is not rated."
        made_by = "pixel statistics and a nudity detector" if detector else "pixel statistics"
        return f"{text} (Offline labeler: {made_by}, not a description of the content.)"

    def health(self) -> LabelerHealth:
        detector = detector_model()
        return {
            "backend": NAME,
            "engine_answers": True,
            "image_exists": None,
            "detector": detector,
            "ok": True,
            "detail": "" if detector else "nudenet is not installed: images get pixel tags but no NSFW rating.",
        }
