from django.contrib import admin
from django.urls import include, path

from imagineer import views

# admin.site is imagineer.admin.ImagineerAdminSite (imagineer.apps.ImagineerAdminConfig).

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("albums.urls")),
    path("", include("generation.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("imagineer.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("training/", include("training.urls")),
    path("api/training/", include("training.api.urls")),
    path("api/", include("albums.api.scrape_urls")),
]
handler404 = "imagineer.api_views.handler404"
handler500 = "imagineer.api_views.handler500"
