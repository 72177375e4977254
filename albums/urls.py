from django.urls import path

from albums import views

app_name = "albums"

urlpatterns = [
    path("images/<int:pk>/file", views.image_file, name="image-file"),
    path("images/<int:pk>/thumbnail", views.image_thumbnail, name="image-thumbnail"),
]
