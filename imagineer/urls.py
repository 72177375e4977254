from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from imagineer import views
from imagineer.api_fallback import FALLBACK_NAME, api_unmatched

# admin.site is imagineer.admin.ImagineerAdminSite (imagineer.apps.ImagineerAdminConfig).

urlpatterns = [
    path("", views.home, name="home"),
    path("csp-report", views.csp_report, name="csp-report"),
    # Pages name their icon; this answers the clients that ask for /favicon.ico regardless.
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("img/favicon.svg"), permanent=True))),
    path("", include("albums.urls")),
    path("", include("generation.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("imagineer.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("training/", include("training.urls")),
    path("api/training/", include("training.api.urls")),
    path("api/", include("albums.api.scrape_urls")),
    path("api/cards/", include("cards.api.urls")),
    path("cards/", include("cards.urls")),
    # Last: /api/ URLs no endpoint matched (a trailing slash, a typo) get a JSON answer.
    re_path(r"^api/(?P<rest>.*)$", api_unmatched, name=FALLBACK_NAME),
]
handler403 = "imagineer.api_views.handler403"
handler404 = "imagineer.api_views.handler404"
handler500 = "imagineer.api_views.handler500"
