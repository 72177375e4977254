from django.contrib import admin

from labeling.models import Label


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["image", "label_type", "text", "source", "source_model", "prompt_type", "created_at"]
    list_filter = ["label_type", "source", "prompt_type"]
    search_fields = ["text"]
    raw_id_fields = ["image"]
    list_select_related = ["image"]
