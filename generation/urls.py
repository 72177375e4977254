from django.urls import path

from generation import views, views_import, views_loras, views_templates

app_name = "generation"

urlpatterns = [
    path("templates/", views.template_list_page, name="template-list"),
    path("templates/new", views_templates.template_new, name="template-new"),
    path("templates/preview", views_templates.template_preview, name="template-preview"),
    path("templates/<slug:slug>/", views.template_detail, name="template-detail"),
    path("templates/<slug:slug>/edit", views_templates.template_edit, name="template-edit"),
    path("templates/<slug:slug>/duplicate", views_templates.template_duplicate_view, name="template-duplicate"),
    path("themes/random", views.theme_random, name="theme-random"),
    path("runs/active", views.runs_active_partial, name="runs-active"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress", views.run_progress_partial, name="run-progress"),
    path("runs/<int:pk>/cancel", views.run_cancel_view, name="run-cancel"),
    path("runs/<int:pk>/retry", views.run_retry_view, name="run-retry"),
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
