"""Training test fixtures: the tiny model (built once per session) and small captioned albums."""

from __future__ import annotations

import pytest

from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, LabelFactory, UserFactory
from labeling.models import Label

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 20)]
SIZES = [(64, 64), (48, 80), (80, 48), (64, 64)]


@pytest.fixture(autouse=True)
def _use_tiny_model(settings, tiny_model_dir):
    """Every training test, and every worker it starts (via worker_env), trains on the tiny model."""
    settings.IMAGINEER_MODEL = ""
    settings.IMAGINEER_TINY_MODEL_DIR = tiny_model_dir
    settings.IMAGINEER_DEVICE = "cpu"
    return tiny_model_dir


@pytest.fixture
def creator(db):
    return UserFactory(role="creator")


def album_make(count: int = 4, *, captions: bool = True, prompts: bool = True, **album_kwargs):
    """An album of small solid-colour PNGs of several aspect ratios, with SD-training captions."""
    album = AlbumFactory(**album_kwargs)
    for index in range(count):
        width, height = SIZES[index % len(SIZES)]
        image = ImageFactory(
            width=width,
            height=height,
            color=COLORS[index % len(COLORS)],
            prompt=f"a plain card {index}" if prompts else "",
        )
        AlbumImageFactory(album=album, image=image, position=index)
        if captions:
            LabelFactory(
                image=image,
                label_type=Label.LabelType.CAPTION,
                prompt_type=Label.PromptType.SD_TRAINING,
                text=f"solid colour card, colour {index}",
            )
    return album


@pytest.fixture
def album(db):
    return album_make()
