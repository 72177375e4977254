from django.urls import path

from generation import views, views_comparisons, views_decks, views_import, views_loras, views_templates

app_name = "generation"

urlpatterns = [
    path("templates/", views.template_list_page, name="template-list"),
    path("templates/new", views_templates.template_new, name="template-new"),
    path("templates/preview", views_templates.template_preview, name="template-preview"),
    path("templates/<slug:slug>/", views.template_detail, name="template-detail"),
    path("templates/<slug:slug>/rows", views.template_rows_partial, name="template-rows"),
    path("templates/<slug:slug>/edit", views_templates.template_edit, name="template-edit"),
    path("templates/<slug:slug>/duplicate", views_templates.template_duplicate_view, name="template-duplicate"),
    path("themes/random", views.theme_random, name="theme-random"),
    path("runs/active", views.runs_active_partial, name="runs-active"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress", views.run_progress_partial, name="run-progress"),
    path("runs/<int:pk>/cancel", views.run_cancel_view, name="run-cancel"),
    path("runs/<int:pk>/retry", views.run_retry_view, name="run-retry"),
    path("templates/<slug:slug>/compare", views_comparisons.comparison_new, name="comparison-new"),
    path("comparisons/<int:pk>/", views_comparisons.comparison_detail, name="comparison-detail"),
    path("comparisons/<int:pk>/pick", views_comparisons.comparison_pick, name="comparison-pick"),
    path("runs/<int:pk>/complete", views_decks.run_complete_view, name="run-complete"),
    path("decks/<int:album_pk>/takes", views_decks.deck_takes_add, name="deck-takes"),
    path("decks/<int:album_pk>/cards/<int:index>/vary", views_decks.deck_vary, name="deck-vary"),
    path("decks/<int:album_pk>/cards/<int:index>/pick", views_decks.deck_pick, name="deck-pick"),
    path("decks/<int:album_pk>/cards/<int:index>", views_decks.deck_card, name="deck-card"),
    path("decks/<int:album_pk>/cards/<int:index>/compare", views_decks.deck_compare, name="deck-compare"),
    path("generate/", views.generate, name="generate"),
    path("generate/import", views_import.generate_import, name="generate-import"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/panel", views.jobs_partial, name="jobs-panel"),
    path("jobs/<int:pk>/cancel", views.job_cancel_view, name="job-cancel"),
    path("loras/", views_loras.lora_list_page, name="lora-list"),
    path("loras/upload", views_loras.lora_upload_view, name="lora-upload"),
    path("loras/<int:pk>/", views_loras.lora_detail, name="lora-detail"),
    path("loras/<int:pk>/delete", views_loras.lora_delete_view, name="lora-delete"),
    path("images/<int:pk>/regenerate", views.image_regenerate_view, name="image-regenerate"),
]
