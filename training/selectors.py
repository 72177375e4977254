"""Reads for training pages and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from imagineer import permissions as perms
from training.models import TrainingRun


def training_run_list(*, user: Any, album_id: int | None = None) -> QuerySet[TrainingRun]:
    """Runs the user may see: curators see all, others their own."""
    runs = TrainingRun.objects.select_related("album", "lora", "created_by").defer("dataset", "loss_history")
    if not perms.is_curator(user):
        runs = runs.filter(created_by=user)
    if album_id is not None:
        runs = runs.filter(album_id=album_id)
    return runs


def training_run_get(*, user: Any, run_id: int) -> TrainingRun:
    runs = TrainingRun.objects.select_related("album", "lora", "created_by")
    if not perms.is_curator(user):
        runs = runs.filter(created_by=user)
    return runs.get(pk=run_id)
