from django.urls import path

from cards import views

app_name = "cards"

urlpatterns = [
    path("albums/<int:album_pk>/", views.finish_page, name="finish"),
    path("templates/<int:template_pk>/guide", views.guide_page, name="guide"),
    path("templates/<int:template_pk>/guide/images", views.guide_image_upload, name="guide-images"),
    path("jobs/<int:pk>/", views.job_page, name="job"),
    path("jobs/<int:pk>/progress", views.job_progress_partial, name="job-progress"),
    path("jobs/<int:pk>/cancel", views.job_cancel_view, name="job-cancel"),
]
