"""Typed results of labeling tasks (what Celery stores as their result)."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class LabelImageOutcome(TypedDict):
    """What ``label_image_task`` returns (its Celery result): the labels when it labelled."""

    image_id: int
    status: Literal["missing", "skipped", "done"]
    caption: NotRequired[str]
    tags: NotRequired[list[str]]
    nsfw_rating: NotRequired[str | None]
    source: NotRequired[str]
    source_model: NotRequired[str]
    prompt_type: NotRequired[str]
