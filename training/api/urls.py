from django.urls import path

from training.api import views

app_name = "training-api"

urlpatterns = [
    path("runs", views.TrainingRunListView.as_view(), name="run-list"),
    path("runs/<int:pk>", views.TrainingRunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/cancel", views.TrainingRunCancelView.as_view(), name="run-cancel"),
    path("runs/<int:pk>/resume", views.TrainingRunResumeView.as_view(), name="run-resume"),
    path("defaults", views.TrainingDefaultsView.as_view(), name="defaults"),
    path("albums/<int:album_id>/dataset.zip", views.DatasetExportView.as_view(), name="dataset-export"),
]
