from django.contrib import admin

from imagineer.admin import CuratorModelAdmin
from labeling.models import Label, LabelingJob


@admin.register(Label)
class LabelAdmin(CuratorModelAdmin):
    list_display = ["image", "label_type", "text", "source", "source_model", "prompt_type", "created_at"]
    list_filter = ["label_type", "source", "prompt_type"]
    search_fields = ["text"]
    raw_id_fields = ["image"]
    list_select_related = ["image"]


@admin.register(LabelingJob)
class LabelingJobAdmin(CuratorModelAdmin):
    list_display = [
        "id",
        "album",
        "status",
        "prompt_type",
        "backend",
        "progress_total",
        "done",
        "failed",
        "skipped",
        "created_at",
    ]
    list_filter = ["status", "backend", "prompt_type"]
    list_select_related = ["album", "created_by"]
    raw_id_fields = ["album", "created_by"]
    readonly_fields = ["progress_total", "done", "failed", "skipped", "errors", "task_id", "started_at", "finished_at"]
