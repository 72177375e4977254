from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from imagineer import views
from imagineer.permissions import admin_site_has_permission

admin.site.site_header = "Imagineer curation"
admin.site.site_title = "Imagineer admin"
admin.site.index_title = "Templates, albums and images"
# One sign-in page (rate-limited, Google-aware) for the admin too.
admin.site.login = admin_login
admin.site.has_permission = admin_site_has_permission

urlpatterns = [
    path("", views.home, name="home"),
    path("csp-report", views.csp_report, name="csp-report"),
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
