"""Typed shapes that cross module boundaries on the generation side (no ORM, no torch)."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class RunOverrides(TypedDict):
    """A run's settings after validation (``run_start``), stored on the run as ``overrides``."""

    steps: int
    guidance_scale: float
    width: int
    height: int
    negative_prompt: str
    style_suffix: NotRequired[str]
    seed: int | None
    seed_policy: str
    lora_weights: dict[str, str]


class RunCurrentItem(TypedDict):
    row_index: int | None
    prompt: str
    step: int
    steps: int


class RunItem(TypedDict):
    row_index: int | None
    status: str
    step: int
    image_id: int | None
    error: str
    attempts: int
    attempt_limit: int


class RunProgress(TypedDict):
    """Everything a progress bar needs (``generation.selectors.run_progress``)."""

    status: str
    total: int
    completed: int
    failed: int
    cancelled: int
    queued: int
    running: int
    cancelling: int
    steps_done: int
    steps_total: int
    current_item: RunCurrentItem | None
    eta_seconds: float | None
    items: list[RunItem]
