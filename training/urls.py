from django.urls import path

from training import views

app_name = "training"

urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("albums/<int:album_id>/new", views.run_start, name="run-start"),
    path("albums/<int:album_id>/dataset.zip", views.dataset_export, name="dataset-export"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/cancel", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/resume", views.run_resume, name="run-resume"),
    path("runs/<int:pk>/checkpoints/<int:step>.safetensors", views.checkpoint_file, name="checkpoint-file"),
    path("runs/<int:pk>/checkpoints/<int:step>/samples/<int:index>.png", views.sample_file, name="sample-file"),
]
