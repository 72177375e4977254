"""factory_boy factories shared by every app's tests.

Each is generic in its model, so ``AlbumFactory.create()`` is an Album to the type checker
(``AlbumFactory()`` is not: factory_boy's metaclass __call__ is unannotated).
"""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from PIL import Image as PILImage

from albums.models import Album, AlbumImage, Image, ScrapeJob
from generation.models import BatchGenerationRun, BatchTemplate, BatchTemplateLora, GenerationJob, Lora
from labeling.models import Label, LabelingJob, LabelingJobItem
from training.models import TrainingRun


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-test-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """UserFactory(role="creator") puts the user in that role group (default: viewer)."""
        if create:
            from imagineer.roles import user_set_role

            user_set_role(user=self, role=extracted or "viewer")


class LoraFactory(factory.django.DjangoModelFactory[Lora]):
    class Meta:
        model = Lora

    name = factory.Sequence(lambda n: f"lora-{n}")
    file = factory.LazyAttribute(lambda o: f"{o.name}.safetensors")
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"lora-{n}".encode()).hexdigest())
    base = Lora.Base.SD15
    rank = 4
    default_weight = Decimal("0.80")


class BatchTemplateFactory(factory.django.DjangoModelFactory[BatchTemplate]):
    class Meta:
        model = BatchTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    slug = factory.Sequence(lambda n: f"template-{n}")
    columns = factory.LazyFunction(lambda: ["sign", "element"])
    csv_data = factory.LazyFunction(
        lambda: [
            {"sign": "Aries", "element": "fire"},
            {"sign": "Taurus", "element": "earth"},
            {"sign": "Gemini", "element": "air"},
        ]
    )
    base_prompt = "a zodiac card"
    prompt_template = "{sign}, {element} element"
    style_suffix = "high detail"
    example_theme = "art deco"
    width = 64
    height = 64
    steps = 2


class BatchTemplateLoraFactory(factory.django.DjangoModelFactory[BatchTemplateLora]):
    class Meta:
        model = BatchTemplateLora

    template = factory.SubFactory(BatchTemplateFactory)
    lora = factory.SubFactory(LoraFactory)
    weight = Decimal("0.60")


class AlbumFactory(factory.django.DjangoModelFactory[Album]):
    class Meta:
        model = Album

    name = factory.Sequence(lambda n: f"Album {n}")
    slug = factory.Sequence(lambda n: f"album-{n}")
    source_type = Album.SourceType.MANUAL


def png_bytes(width: int = 32, height: int = 48, color: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageFactory(factory.django.DjangoModelFactory[Image]):
    """An Image row with a real PNG file under MEDIA_ROOT."""

    class Meta:
        model = Image

    width = 32
    height = 48
    prompt = factory.Sequence(lambda n: f"a test picture number {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        color = kwargs.pop("color", (200, 40, 90))
        data = png_bytes(kwargs["width"], kwargs["height"], color)
        digest = hashlib.sha256(data + str(kwargs["prompt"]).encode()).hexdigest()
        relative = f"outputs/test/{digest[:16]}.png"
        path = settings.MEDIA_ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        kwargs.setdefault("file", relative)
        kwargs.setdefault("sha256", digest)
        kwargs.setdefault("file_size", len(data))
        return super()._create(model_class, *args, **kwargs)


class AlbumImageFactory(factory.django.DjangoModelFactory[AlbumImage]):
    class Meta:
        model = AlbumImage

    album = factory.SubFactory(AlbumFactory)
    image = factory.SubFactory(ImageFactory)
    position = factory.Sequence(lambda n: n)


class LabelFactory(factory.django.DjangoModelFactory[Label]):
    class Meta:
        model = Label

    image = factory.SubFactory(ImageFactory)
    label_type = Label.LabelType.TAG
    text = factory.Sequence(lambda n: f"tag{n}")
    source = "manual"


# --- background jobs (imagineer.models.Job): queued unless told otherwise ---------------------


class BatchGenerationRunFactory(factory.django.DjangoModelFactory[BatchGenerationRun]):
    class Meta:
        model = BatchGenerationRun

    template = factory.SubFactory(BatchTemplateFactory)
    template_snapshot = factory.LazyAttribute(lambda o: {"name": o.template.name} if o.template else {})
    theme = "art deco"
    album = factory.SubFactory(AlbumFactory, source_type=Album.SourceType.BATCH_GENERATION)


class GenerationJobFactory(factory.django.DjangoModelFactory[GenerationJob]):
    class Meta:
        model = GenerationJob

    prompt = factory.Sequence(lambda n: f"a red fox, number {n}")
    width = 64
    height = 64
    steps = 2
    guidance_scale = 7.0
    seed = factory.Sequence(lambda n: n)
    progress_total = factory.LazyAttribute(lambda o: o.steps)


class LabelingJobFactory(factory.django.DjangoModelFactory[LabelingJob]):
    class Meta:
        model = LabelingJob

    album = factory.SubFactory(AlbumFactory)
    backend = "local"


class LabelingJobItemFactory(factory.django.DjangoModelFactory[LabelingJobItem]):
    class Meta:
        model = LabelingJobItem

    job = factory.SubFactory(LabelingJobFactory)
    image = factory.SubFactory(ImageFactory)


class ScrapeJobFactory(factory.django.DjangoModelFactory[ScrapeJob]):
    class Meta:
        model = ScrapeJob

    start_urls = factory.LazyFunction(lambda: ["https://example.com/"])
    album = factory.SubFactory(AlbumFactory, source_type=Album.SourceType.SCRAPE)
    max_images = 10
    progress_total = factory.LazyAttribute(lambda o: o.max_images)


class TrainingRunFactory(factory.django.DjangoModelFactory[TrainingRun]):
    class Meta:
        model = TrainingRun

    album = factory.SubFactory(AlbumFactory)
    name = factory.Sequence(lambda n: f"LoRA {n}")
    trigger_word = "crdz"
    base_model = "tiny"
    learning_rate = 1e-4
    rank = 4
    alpha = 4.0
    dropout = 0.0
    max_steps = 10
    save_every = 5
    resolution = 64
    batch_size = 1
    gradient_accumulation = 1
    seed = 1
    progress_total = factory.LazyAttribute(lambda o: o.max_steps)
