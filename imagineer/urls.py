from django.contrib import admin
from django.urls import include, path

from imagineer import views

admin.site.site_header = "Imagineer curation"
admin.site.site_title = "Imagineer admin"
admin.site.index_title = "Templates, albums and images"

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("albums.urls")),
    path("admin/", admin.site.urls),
]
