"""Datasets: caption order, bad input refused before any GPU work, the kohya-style export."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from albums.services.files import media_path
from imagineer.errors import ApplicationError
from imagineer.tests.factories import AlbumImageFactory, ImageFactory, LabelFactory, LoraFactory
from labeling.models import Label
from training.models import TrainingRun
from training.services.datasets import dataset_collect, dataset_export_zip
from training.services.runs import training_start
from training.tests.conftest import album_make

pytestmark = pytest.mark.django_db


def _start(album, user, **kwargs):
    return training_start(
        album=album, name=kwargs.pop("name", "Cards"), trigger_word="crdz", created_by=user, enqueue=False, **kwargs
    )


def test_caption_order_sd_training_then_default_then_prompt(album):
    memberships = list(album.memberships.select_related("image").order_by("position"))
    first, second, third = (m.image for m in memberships[:3])
    LabelFactory(
        image=first, label_type=Label.LabelType.CAPTION, prompt_type=Label.PromptType.DEFAULT, text="default one"
    )
    Label.objects.filter(image=second, prompt_type=Label.PromptType.SD_TRAINING).delete()
    LabelFactory(
        image=second, label_type=Label.LabelType.CAPTION, prompt_type=Label.PromptType.DEFAULT, text="default two"
    )
    LabelFactory(image=second, label_type=Label.LabelType.TAG, text="just a tag")
    Label.objects.filter(image=third).delete()

    items = dataset_collect(album=album)
    assert [(item.caption, item.caption_source) for item in items[:3]] == [
        ("solid colour card, colour 0", "sd_training"),
        ("default two", "default"),
        ("a plain card 2", "prompt"),
    ]
    only_default = dataset_collect(album=album, caption_source=TrainingRun.CaptionSource.PROMPT)
    assert [item.caption for item in only_default] == [f"a plain card {n}" for n in range(4)]


def test_bad_input_is_refused_before_any_work(creator):
    small = album_make(1)
    with pytest.raises(ApplicationError, match="has 1 image; training needs at least 2"):
        _start(small, creator)

    uncaptioned = album_make(3, captions=False, prompts=False)
    with pytest.raises(ApplicationError, match="3 images have no caption") as caught:
        _start(uncaptioned, creator)
    assert "Label the album" in caught.value.message

    album = album_make(3)
    with pytest.raises(ApplicationError) as caught:
        _start(album, creator, params={"rank": 0, "max_steps": 10**7, "resolution": 100})
    assert set(caught.value.fields) == {"rank", "max_steps", "resolution"}
    assert "between 1 and 128" in caught.value.fields["rank"][0]
    with pytest.raises(ApplicationError, match="Unknown base model 'sdxl-base'"):
        _start(album, creator, base_model="sdxl-base")
    with pytest.raises(ApplicationError, match="trigger"):
        training_start(album=album, name="x", trigger_word="bad/word", created_by=creator, enqueue=False)
    LoraFactory(name="Taken")
    with pytest.raises(ApplicationError, match="already has a LoRA named 'Taken'"):
        _start(album, creator, name="Taken")
    assert not TrainingRun.objects.exists()


def test_huge_images_refused_and_non_rgb_converted(creator, settings):
    album = album_make(2)
    palette = ImageFactory(width=40, height=40)
    path = media_path(palette.file.name)
    PILImage.new("P", (40, 40), 3).save(path)
    AlbumImageFactory(album=album, image=palette, position=5)
    LabelFactory(image=palette, label_type=Label.LabelType.CAPTION, prompt_type="sd_training", text="palette image")
    assert len(dataset_collect(album=album)) == 3  # palette images are converted by the trainer

    settings.IMAGINEER_TRAINING_MAX_IMAGE_PIXELS = 3000
    with pytest.raises(ApplicationError, match=r"64×64 is too large to train on") as caught:
        _start(album, creator)
    assert "downscale it first" in caught.value.message

    settings.IMAGINEER_TRAINING_MAX_IMAGE_PIXELS = 10**6
    PILImage.new("I;16", (40, 40)).save(path)
    with pytest.raises(ApplicationError, match="pixel mode I;16 cannot be converted"):
        _start(album, creator)


def test_start_stores_dataset_defaults_and_sample_prompt(album, creator):
    run = _start(album, creator)
    assert run.status == TrainingRun.Status.QUEUED
    assert (run.learning_rate, run.rank, run.alpha, run.dropout, run.max_steps, run.save_every) == (
        1e-4,
        4,
        8,
        0.1,
        1000,
        100,
    )
    assert (run.resolution, run.batch_size, run.gradient_accumulation) == (512, 1, 1)
    assert run.base_model == "imagineer/tiny-sd15-random"
    assert len(run.dataset) == 4 and run.dataset[0]["caption"] == "solid colour card, colour 0"
    assert run.sample_prompts == ["crdz, solid colour card, colour 0"]


def test_viewer_cannot_train(album, client):
    from django.urls import reverse

    from imagineer.tests.factories import UserFactory

    client.force_login(UserFactory(role="viewer"))
    start = {"album": album.pk, "name": "Viewer's", "trigger_word": "crdz"}
    assert client.post(reverse("training-api:run-list"), start, content_type="application/json").status_code == 403
    assert client.post(reverse("training:run-start", args=[album.pk]), start).status_code == 403
    assert not TrainingRun.objects.exists()


def test_export_zip_is_kohya_style(album):
    buffer = io.BytesIO()
    assert dataset_export_zip(album=album, trigger_word="crdz", handle=buffer, repeats=5) == 4
    with zipfile.ZipFile(buffer) as archive:
        names = sorted(archive.namelist())
        assert names[:2] == ["5_crdz/0001.png", "5_crdz/0001.txt"] and len(names) == 9
        assert names[-1] == "dataset.toml"
        assert archive.read("5_crdz/0002.txt").decode() == "crdz, solid colour card, colour 1\n"
        with PILImage.open(io.BytesIO(archive.read("5_crdz/0003.png"))) as image:
            assert image.size == (80, 48)


def test_export_dataset_command(album, tmp_path):
    output = tmp_path / "set.zip"
    call_command("export_dataset", album.slug, "--trigger", "crdz", "-o", str(output), verbosity=0)
    with zipfile.ZipFile(output) as archive:
        assert len(archive.namelist()) == 9
    # The README's form: no --trigger, it comes from the album.
    default = tmp_path / "default.zip"
    call_command("export_dataset", album.slug, "-o", str(default), verbosity=0)
    trigger = album.slug.replace("-", "_")
    with zipfile.ZipFile(default) as archive:
        assert f"10_{trigger}/0001.txt" in archive.namelist()
        assert archive.read(f"10_{trigger}/0001.txt").decode().startswith(f"{trigger}, ")
    small = album_make(1)
    with pytest.raises(CommandError, match="at least 2"):
        call_command("export_dataset", str(small.pk), "--trigger", "crdz", "-o", str(tmp_path / "no.zip"), verbosity=0)
    assert not (tmp_path / "no.zip").exists()


def _replace_file(image, fmt: str, suffix: str, **save) -> None:
    """Give an album image a file in another format (as a scrape of a GIF or TIFF would)."""
    relative = f"outputs/test/converted-{image.pk}{suffix}"
    path = media_path(relative)
    frames = [PILImage.new("P", (40, 24), index) for index in range(3)] if fmt == "GIF" else None
    if frames:
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], transparency=0)
    else:
        PILImage.new("RGB", (40, 24), (10, 120, 200)).save(path, format=fmt, **save)
    image.file.name = relative
    image.save(update_fields=["file"])


def test_export_converts_what_trainers_skip_and_names_the_caption_extension(album):
    import tomllib

    images = [m.image for m in album.memberships.select_related("image").order_by("position")]
    _replace_file(images[0], "GIF", ".gif")
    _replace_file(images[1], "TIFF", ".tiff")
    _replace_file(images[2], "JPEG", ".jpeg", quality=90)
    _replace_file(images[3], "WEBP", ".webp")
    buffer = io.BytesIO()
    assert dataset_export_zip(album=album, trigger_word="crdz", handle=buffer, repeats=3, resolution=768) == 4
    with zipfile.ZipFile(buffer) as archive:
        names = sorted(archive.namelist())
        assert names == [
            "3_crdz/0001.png", "3_crdz/0001.txt", "3_crdz/0002.png", "3_crdz/0002.txt",
            "3_crdz/0003.jpg", "3_crdz/0003.txt", "3_crdz/0004.txt", "3_crdz/0004.webp", "dataset.toml",
        ]  # fmt: skip
        for name, expected in (("0001.png", "PNG"), ("0002.png", "PNG"), ("0003.jpg", "JPEG"), ("0004.webp", "WEBP")):
            with PILImage.open(io.BytesIO(archive.read(f"3_crdz/{name}"))) as exported:
                assert exported.format == expected and exported.size == (40, 24)
        # JPEG and WebP go in byte for byte; the GIF's first frame keeps its transparency.
        assert archive.read("3_crdz/0003.jpg") == media_path(images[2].file.name).read_bytes()
        with PILImage.open(io.BytesIO(archive.read("3_crdz/0001.png"))) as first:
            assert first.mode == "RGBA" and first.getpixel((0, 0))[3] == 0
        config = tomllib.loads(archive.read("dataset.toml").decode())
    assert config["general"] == {"enable_bucket": True, "caption_extension": ".txt"}
    (dataset,) = config["datasets"]
    assert dataset["resolution"] == 768
    assert dataset["subsets"] == [{"image_dir": "3_crdz", "num_repeats": 3, "class_tokens": "crdz"}]
    with pytest.raises(ApplicationError, match="multiple of 64"):
        dataset_export_zip(album=album, trigger_word="crdz", handle=io.BytesIO(), resolution=500)


def test_offline_labeler_captions_never_become_training_captions(album):
    images = [m.image for m in album.memberships.select_related("image").order_by("position")]
    Label.objects.filter(image=images[0]).delete()
    for prompt_type in (Label.PromptType.SD_TRAINING, Label.PromptType.DEFAULT):
        LabelFactory(
            image=images[0],
            label_type=Label.LabelType.CAPTION,
            prompt_type=prompt_type,
            source="local",
            text="Landscape image, blue tones (Offline labeler: pixel statistics, not a description of the content.)",
        )
    items = dataset_collect(album=album)
    assert (items[0].caption, items[0].caption_source) == ("a plain card 0", "prompt")
    with pytest.raises(ApplicationError, match="1 image has no caption"):
        dataset_collect(album=album, caption_source=TrainingRun.CaptionSource.SD_TRAINING)
