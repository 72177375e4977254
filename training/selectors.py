"""Reads for training pages and the API. Whose runs a user may see is narrowed by the caller
with imagineer.permissions.training_runs_visible."""

from __future__ import annotations

from django.db.models import QuerySet

from training.models import TrainingRun


def training_run_list(*, album_id: int | None = None) -> QuerySet[TrainingRun]:
    """Runs without their bulky dataset and loss history, for lists."""
    runs = TrainingRun.objects.select_related("album", "lora", "created_by").defer("dataset", "loss_history")
    return runs if album_id is None else runs.filter(album_id=album_id)


def training_run_detail() -> QuerySet[TrainingRun]:
    """Runs with everything, for one run's page."""
    return TrainingRun.objects.select_related("album", "lora", "created_by")
