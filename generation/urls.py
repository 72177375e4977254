from django.urls import path

from generation import views, views_comparisons, views_decks, views_import

app_name = "generation"

urlpatterns = [
    path("templates/", views.template_list_page, name="template-list"),
    path("templates/<slug:slug>/", views.template_detail, name="template-detail"),
    path("templates/<slug:slug>/rows", views.template_rows_partial, name="template-rows"),
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
    path("generate/", views.generate, name="generate"),
    path("generate/import", views_import.generate_import, name="generate-import"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/panel", views.jobs_partial, name="jobs-panel"),
    path("jobs/<int:pk>/cancel", views.job_cancel_view, name="job-cancel"),
    path("images/<int:pk>/regenerate", views.image_regenerate_view, name="image-regenerate"),
]
