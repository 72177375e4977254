"""What every labeler returns and raises, and the prompts they ask with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict

from imagineer.errors import ApplicationError

PROMPT_TYPES = ("default", "sd_training")
NSFW_RATINGS = ("SAFE", "SUGGESTIVE", "ADULT", "EXPLICIT")
MAX_TAGS = 20
# Kept on a failure so that an operator can see what the model said; bounded for the database.
MAX_RAW_RESPONSE_CHARS = 20_000


class LabelResultDict(TypedDict):
    caption: str
    tags: list[str]
    nsfw_rating: str | None
    source: str
    source_model: str
    prompt_type: str


class LabelerHealth(TypedDict):
    """Can this labeler work? Each backend adds what it checked (image, executable, detector ...)."""

    backend: str
    engine_answers: bool
    # None where the backend runs no container image.
    image_exists: bool | None
    ok: bool
    detail: NotRequired[str]
    image: NotRequired[str]
    credentials_found: NotRequired[bool]
    engine_version: NotRequired[str]
    executable: NotRequired[str]
    version: NotRequired[str]
    detector: NotRequired[str | None]


@dataclass
class LabelResult:
    """One image's labels. ``caption`` is the description (``default``) or the training caption."""

    caption: str
    tags: list[str]
    nsfw_rating: str | None
    source: str
    source_model: str
    prompt_type: str
    raw_response: str = ""
    # Tags made by another model than ``source_model`` (the local labeler mixes two).
    tag_models: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> LabelResultDict:
        return {
            "caption": self.caption,
            "tags": list(self.tags),
            "nsfw_rating": self.nsfw_rating,
            "source": self.source,
            "source_model": self.source_model,
            "prompt_type": self.prompt_type,
        }


class LabelError(ApplicationError):
    """Labeling this image failed in a way that trying again will not fix."""

    transient = False

    def __init__(self, message: str, *, raw_response: str = "", code: str = "label_failed"):
        super().__init__(message, code=code)
        self.raw_response = raw_response[:MAX_RAW_RESPONSE_CHARS]


class TransientLabelError(LabelError):
    """A timeout, a rate limit or an engine that did not answer: worth retrying later."""

    transient = True


class LabelParseError(LabelError):
    """The model answered, but not with the JSON we asked for; ``raw_response`` keeps the answer."""


class Labeler(Protocol):
    name: str

    def label(self, image_path: Path, prompt_type: str = "default") -> LabelResult: ...

    def health(self) -> LabelerHealth: ...


def prompt_build(prompt_type: str, image_path: str) -> str:
    """The instruction for Claude; the image path is the one the CLI will see."""
    if prompt_type == "default":
        return (
            f"Analyze the image at this path: {image_path}\n"
            "Read the image file, then answer with only a JSON object, no other text:\n"
            '{"description": "one or two sentences describing the image", '
            '"nsfw_rating": "SAFE | SUGGESTIVE | ADULT | EXPLICIT", '
            '"tags": ["5 to 10 short lowercase tags"]}\n'
            "nsfw_rating: SAFE for general audiences; SUGGESTIVE for revealing clothing or suggestive poses; "
            "ADULT for nudity; EXPLICIT for sexual activity."
        )
    if prompt_type == "sd_training":
        return (
            f"Analyze the image at this path: {image_path}\n"
            "Read the image file and write a caption for Stable Diffusion training: comma-separated phrases, "
            "subject first, then setting, composition, lighting, colours and style, no full sentences, "
            "no quality words such as masterpiece. Answer with only a JSON object, no other text:\n"
            '{"caption": "the training caption", "nsfw_rating": "SAFE | SUGGESTIVE | ADULT | EXPLICIT", '
            '"tags": ["5 to 10 short lowercase tags"]}'
        )
    raise LabelError(
        f"Unknown prompt type {prompt_type!r}; choose one of {', '.join(PROMPT_TYPES)}.", code="invalid_prompt_type"
    )
