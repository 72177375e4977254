from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from imagineer.admin import CuratorModelAdmin
from training.models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(CuratorModelAdmin):
    """Read-only: runs are started, cancelled and resumed through the training services (pages, API)."""

    list_display = [
        "name",
        "trigger_word",
        "album",
        "status",
        "phase",
        "progress_done",
        "max_steps",
        "lora",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "caption_source"]
    search_fields = ["name", "trigger_word", "album__name"]
    list_select_related = ["album", "lora", "created_by"]
    exclude = ["dataset", "loss_history"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
