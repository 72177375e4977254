from django.urls import path

from cards import views

app_name = "cards"

urlpatterns = [
    path("albums/<int:album_pk>/", views.finish_page, name="finish"),
    path("jobs/<int:pk>/", views.job_page, name="job"),
    path("jobs/<int:pk>/progress", views.job_progress_partial, name="job-progress"),
    path("jobs/<int:pk>/cancel", views.job_cancel_view, name="job-cancel"),
]
