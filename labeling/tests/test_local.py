"""The offline labeler on real photographs that ship inside scikit-image's wheel."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from imagineer.tests.factories import ImageFactory
from labeling import services
from labeling.backends import labeler_get
from labeling.backends.local import rating_from_detections
from labeling.models import Label

_SKIMAGE = importlib.util.find_spec("skimage")
assert _SKIMAGE is not None and _SKIMAGE.submodule_search_locations, "scikit-image (requirements-dev.txt)"
SKIMAGE_DATA = Path(_SKIMAGE.submodule_search_locations[0]) / "data"


def photo(name: str):
    relative = f"outputs/photos/{name}"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SKIMAGE_DATA / name, target)
    return ImageFactory(file=relative, width=1, height=1)


@pytest.mark.django_db
def test_portrait_photo_gets_face_tags_a_safe_rating_and_says_which_model_made_what():
    image = photo("astronaut.png")  # Eileen Collins' NASA portrait, 512x512
    result = services.image_label(image=image, backend="local")
    assert result.nsfw_rating == "SAFE"
    assert {"face", "person", "square"} <= set(result.tags)
    assert result.source_model.startswith("pixel-statistics + nudenet-3.4.2")
    labels = {label.text: label for label in Label.objects.filter(image=image, label_type="tag")}
    assert labels["face"].source_model == "nudenet-3.4.2/320n.onnx"
    assert labels["square"].source_model == "pixel-statistics"
    caption = Label.objects.get(image=image, label_type="caption")
    assert "512x512" in caption.text and "1 face" in caption.text and "Offline labeler" in caption.text
    image.refresh_from_db()
    assert (image.nsfw_rating, image.is_nsfw) == ("SAFE", False)


@pytest.mark.django_db
def test_photo_without_people_and_training_caption():
    image = photo("coffee.png")  # a cup of coffee, 600x400
    result = labeler_get("local").label(Path(settings.MEDIA_ROOT) / image.file.name, "sd_training")
    assert "face" not in result.tags and "person" not in result.tags
    assert "landscape" in result.tags
    assert result.nsfw_rating == "SAFE"
    assert result.caption.startswith("landscape composition")


def test_rating_rules():
    def found(*classes, score=0.8):
        return [{"class": c, "score": score} for c in classes]

    assert rating_from_detections(found("FACE_FEMALE")) == "SAFE"
    assert rating_from_detections(found("BELLY_EXPOSED")) == "SUGGESTIVE"
    assert rating_from_detections(found("FEMALE_BREAST_EXPOSED", "FACE_FEMALE")) == "ADULT"
    assert rating_from_detections(found("MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED")) == "EXPLICIT"
    assert rating_from_detections(found("MALE_GENITALIA_EXPOSED", score=0.3)) == "SAFE"


@pytest.mark.django_db
def test_without_the_optional_detector_images_get_pixel_tags_and_no_rating(monkeypatch):
    from labeling.backends import local

    monkeypatch.setattr(local, "detector_model", lambda: None)
    image = photo("astronaut.png")
    result = services.image_label(image=image, backend="local")
    assert result.nsfw_rating is None and result.source_model == "pixel-statistics"
    assert "face" not in result.tags and "square" in result.tags
    assert "not rated" in result.caption
    image.refresh_from_db()
    assert image.nsfw_rating == ""
    assert local.LocalLabeler().health()["detector"] is None
